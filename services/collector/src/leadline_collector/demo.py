"""``GET /demo``: one self-contained page to try every browser capture path after ``make up``.

It loads the snippet, carries the demo lead form (posting to the collector itself, so it also works without
JavaScript), tracked links and a button sending a custom event. No external assets: it must work offline.
"""

from __future__ import annotations

from html import escape

_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2733;background:#f4f6f9}
main{max-width:44rem;margin:0 auto;padding:2rem 1.25rem 4rem}
h1{margin:0 0 .25rem;font-size:1.75rem}
h2{margin:0 0 .75rem;font-size:1.15rem}
p.lead{margin:0 0 1.5rem;color:#52606d}
section{background:#fff;border:1px solid #dde3ea;border-radius:10px;padding:1.25rem 1.5rem;margin:0 0 1.25rem}
label{display:block;margin:0 0 .8rem;font-weight:600;font-size:.9rem}
input,textarea{display:block;width:100%;margin-top:.25rem;padding:.55rem .65rem;font:inherit;font-weight:400;
border:1px solid #c3ccd6;border-radius:6px;background:#fff}
textarea{min-height:6rem;resize:vertical}
input:focus,textarea:focus{outline:2px solid #2f6fde;outline-offset:1px}
label.check{display:flex;gap:.5rem;align-items:flex-start;font-weight:400}
label.check input{width:auto;margin-top:.3rem}
button{font:inherit;font-weight:600;padding:.6rem 1.2rem;border:0;border-radius:6px;cursor:pointer;color:#fff;
background:#2f6fde}
button:hover{background:#2559b5}
button.blue{background:#1f8ad8}
.hp{position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden}
.banner{background:#e3f6e8;border:1px solid #9bd3aa;color:#17502a;border-radius:10px;padding:.9rem 1.25rem;
margin:0 0 1.25rem;font-weight:600}
ul{margin:0;padding-left:1.2rem}
li{margin:.3rem 0}
a{color:#2f6fde}
small{color:#52606d}
"""

# The queue stub: calls made before s.js has loaded are kept and replayed by the snippet.
_STUB = "window.leadline=window.leadline||function(){(leadline.q=leadline.q||[]).push(arguments)};"
_BUTTON = (
    "document.getElementById('demo-button').addEventListener('click',function(){"
    "leadline('track','demo_button',{color:'blue'});"
    "document.getElementById('demo-button-done').textContent='Sent a demo_button event.';});"
)


def _links(links: list[tuple[str, str]]) -> str:
    if not links:
        return "<p><small>No tracked links are configured.</small></p>"
    items = "\n".join(f'<li><a href="{escape(href)}">{escape(label)}</a></li>' for label, href in links)
    return f"<ul>\n{items}\n</ul>"


def render_demo(prefix: str, links: list[tuple[str, str]], thanks: bool) -> str:
    """The demo page for a collector mounted at ``prefix`` ("" or e.g. "/ll"); ``links`` are (label, href)."""
    p = escape(prefix.rstrip("/"))
    banner = '<div class="banner" role="status">Thanks, we\'ll be in touch.</div>' if thanks else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Leadline demo</title>
<style>{_STYLE}</style>
<script>{_STUB}</script>
<script async src="{p}/s.js"></script>
</head>
<body>
<main>
<h1>Leadline demo</h1>
<p class="lead">This page sends a page view through the Leadline snippet. Try the form, the links and the button,
then look the visitor up in the CRM.</p>
{banner}
<section>
<h2>Talk to us</h2>
<form id="demo-form" method="post" action="{p}/f/demo">
<label>Email <input type="email" name="email" autocomplete="email" required></label>
<label>Name <input type="text" name="name" autocomplete="name"></label>
<label>Phone <input type="tel" name="phone" autocomplete="tel"></label>
<label>Company <input type="text" name="company" autocomplete="organization"></label>
<label>Message <textarea name="message"></textarea></label>
<div class="hp" aria-hidden="true"><label>Website <input type="text" name="website" tabindex="-1"
autocomplete="off"></label></div>
<label class="check"><input type="checkbox" name="consent_marketing" value="yes">
<span>Send me product news by email. You can unsubscribe at any time.</span></label>
<button type="submit">Send</button>
</form>
</section>
<section>
<h2>Tracked links</h2>
{_links(links)}
</section>
<section>
<h2>Custom event</h2>
<button type="button" class="blue" id="demo-button">Blue button</button>
<small id="demo-button-done" role="status"></small>
</section>
</main>
<script>{_BUTTON}</script>
</body>
</html>
"""
