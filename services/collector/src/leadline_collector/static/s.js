/*! Leadline capture snippet: page views, custom events, purchases, identify and form capture, sent in batches.
 * Consent, Do Not Track and Global Privacy Control are honoured. No dependencies, never reads cookies. */
(() => {
  'use strict';
  const w = window, d = document, nav = navigator;
  const prior = w.leadline;
  if (prior && prior.loaded) return;

  const script = d.currentScript || d.querySelector('script[src*="s.js"][data-endpoint], script[src$="/s.js"]');
  const attr = (n) => (script && script.getAttribute('data-' + n)) || '';
  const base = new URL(attr('endpoint') || (script ? script.src.replace(/\/s\.js([?#].*)?$/, '') : location.origin),
    location.href).href.replace(/\/+$/, '');
  const requireConsent = attr('require-consent') === 'true';
  const WINDOW = 1000, BATCH = 10, MAX_BATCH = 50, MAX_BYTES = 56000, KEEPALIVE = 16000, MAX_TRIES = 3, MAX_QUEUE = 500, DAY = 864e5;
  const Q = 'leadline:q:', CONSENT = 'leadline:consent';
  const dnt = nav.doNotTrack == '1' || w.doNotTrack == '1';
  const gpc = nav.globalPrivacyControl === true;
  const quiet = dnt || gpc; // no identify, no personal form fields

  // localStorage may be missing or full (private modes, quotas): the snippet then keeps events in memory only.
  const store = {
    get(k) { try { return JSON.parse(localStorage.getItem(k)); } catch (_) { return null; } },
    set(k, v) { try { localStorage.setItem(k, JSON.stringify(v)); } catch (_) { /* memory only */ } },
    del(k) { try { localStorage.removeItem(k); } catch (_) { /* nothing stored */ } },
    keys() {
      try { const out = []; for (let i = 0; i < localStorage.length; i++) out.push(localStorage.key(i)); return out; }
      catch (_) { return []; }
    },
  };

  // crypto.randomUUID exists only in secure contexts; a v4 from getRandomValues elsewhere.
  const uuid = () => {
    const c = w.crypto;
    if (c.randomUUID) return c.randomUUID();
    const b = c.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };

  // JSON-safe copy of caller data: primitives, short strings, small arrays and objects, two levels deep.
  const clean = (v, depth = 0) => {
    if (v == null || typeof v === 'boolean') return v;
    if (typeof v === 'number') return isFinite(v) ? v : null;
    if (typeof v === 'string') return v.slice(0, 1000);
    if (depth > 2 || typeof v !== 'object') return undefined;
    if (Array.isArray(v)) return v.slice(0, 50).map((x) => clean(x, depth + 1));
    const out = {};
    for (const k of Object.keys(v).slice(0, 50)) {
      const c = clean(v[k], depth + 1);
      if (c !== undefined) out[k.slice(0, 128)] = c;
    }
    return out;
  };
  const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? clean(v) : {});

  // Consent: stored choice, else granted unless the site requires consent (then undecided: held in memory).
  const saved = store.get(CONSENT);
  let consent = saved ? { analytics: !!saved.analytics, marketing: !!saved.marketing }
    : { analytics: !requireConsent, marketing: false };
  let decided = !!saved || !requireConsent;
  const flags = () => ({ analytics: consent.analytics, marketing: consent.marketing, dnt, gpc });

  const pageKey = Q + uuid();
  let queue = []; // {e: event, t: queued at, at: due at, n: failed tries in this page, busy}
  let held = []; // events waiting for a consent decision; never written to storage
  let inflight = false, timer = 0, due = Infinity, lastUrl = '';

  const save = () => (queue.length ? store.set(pageKey, queue.map((i) => ({ e: i.e, t: i.t }))) : store.del(pageKey));
  const dropStored = () => store.keys().forEach((k) => k.startsWith(Q) && k !== pageKey && store.del(k));

  // Events left behind by earlier pages (navigation, failed sends) are sent from here; older than a day: dropped.
  const adopt = () => {
    const now = Date.now(), seen = new Set(queue.map((i) => i.e.id));
    for (const k of store.keys()) {
      if (!k.startsWith(Q) || k === pageKey) continue;
      const items = store.get(k);
      store.del(k);
      if (!Array.isArray(items)) continue;
      for (const it of items) {
        if (!it || !it.e || !(now - it.t < DAY) || seen.has(it.e.id)) continue;
        seen.add(it.e.id);
        queue.push({ e: it.e, t: it.t, at: now + WINDOW, n: 0 });
      }
    }
    if (queue.length) { save(); plan(); }
  };

  const build = (type, extra) => Object.assign({
    id: uuid(), type, props: {}, url: location.href, ref: d.referrer, title: d.title,
    ts: new Date().toISOString(), consent: flags(),
  }, extra);

  const send = (e) => {
    if (!decided) { if (held.length < 100) held.push(e); return; }
    if (!consent.analytics) return;
    const now = Date.now();
    queue.push({ e, t: now, at: now + WINDOW, n: 0 });
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    save();
    plan();
  };

  const schedule = (ms) => {
    const at = Date.now() + ms;
    if (timer && due <= at) return;
    clearTimeout(timer);
    due = at;
    timer = setTimeout(() => { timer = 0; due = Infinity; flush(); }, ms);
  };
  // Next flush: at once when a batch is full, else when the oldest event's window (or its backoff) ends.
  const plan = () => {
    if (inflight) return;
    let next = Infinity, fresh = 0;
    for (const i of queue) {
      if (i.busy || i.n >= MAX_TRIES) continue;
      if (!i.n) fresh++;
      next = Math.min(next, i.at);
    }
    if (fresh >= BATCH) schedule(0);
    else if (next < Infinity) schedule(Math.max(0, next - Date.now()));
  };

  const body = (items) => JSON.stringify({ sent_at: new Date().toISOString(), batch: items.map((i) => i.e) });
  // Batches of at most 50 events and ~56 KB: under the collector's 64 KB body cap and the beacon quota.
  // keepalive (the fetch outlives the page) only for small bodies: Chrome caps in-flight keepalive bytes at 64 KB.
  const chunks = (items) => {
    const out = [];
    let cur = [], size = 0;
    for (const i of items) {
      const n = JSON.stringify(i.e).length + 1;
      if (cur.length && (cur.length >= MAX_BATCH || size + n > MAX_BYTES)) { out.push(cur); cur = []; size = 0; }
      cur.push(i);
      size += n;
    }
    if (cur.length) out.push(cur);
    return out;
  };
  const remove = (items) => { const s = new Set(items); queue = queue.filter((i) => !s.has(i)); };

  const flush = () => {
    if (inflight) return;
    const now = Date.now();
    queue = queue.filter((i) => now - i.t < DAY);
    const items = chunks(queue.filter((i) => !i.busy && i.n < MAX_TRIES && (!i.n || i.at <= now)))[0];
    if (!items) { save(); return plan(); }
    inflight = true;
    items.forEach((i) => { i.busy = true; });
    const data = body(items);
    const ctl = w.AbortController ? new AbortController() : null;
    const kill = setTimeout(() => ctl && ctl.abort(), 10000);
    fetch(base + '/e', {
      method: 'POST', body: data, headers: { 'Content-Type': 'application/json' },
      keepalive: data.length < KEEPALIVE, credentials: 'include', signal: ctl ? ctl.signal : undefined,
    })
      // A 4xx other than 408/429 will never be accepted: retrying would only repeat it.
      .then((r) => r.ok || (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429), () => false)
      .then((ok) => {
        clearTimeout(kill);
        inflight = false;
        if (ok) remove(items);
        else {
          const f = 0.9 + Math.random() * 0.2, now2 = Date.now(); // one jitter: the batch stays together
          items.forEach((i) => {
            i.busy = false;
            i.n++;
            i.at = now2 + WINDOW * 2 ** (i.n - 1) * f;
          });
        }
        save();
        plan();
      });
  };

  // The page is going away (or may be killed while hidden): hand what is queued to sendBeacon.
  // Events that sendBeacon refuses stay in localStorage for the next page.
  const beacon = () => {
    if (!nav.sendBeacon) return flush();
    for (const chunk of chunks(queue.filter((i) => !i.busy && i.n < MAX_TRIES))) {
      if (!nav.sendBeacon(base + '/e', body(chunk))) break;
      remove(chunk);
    }
    save();
  };

  // Forms: every field but passwords, hidden and file inputs, card data and anything marked data-leadline-ignore.
  const SENSITIVE = /pass|pwd|secret|token|ssn|social.?sec|iban|card|credit|cvv|cvc|csc|ccv|expir|(^|[^a-z])(cc|pin)([^a-z]|$)/i;
  const PERSONAL = /mail|phone|tel|mobile|fax|name|addr|street|city|zip|postal|birth|company/i;
  const SKIP_TYPES = /^(password|hidden|file|submit|button|reset|image|fieldset|object|output)$/;
  const luhn = (v) => {
    const s = v.replace(/[ -]/g, '');
    if (!/^\d{13,19}$/.test(s)) return false;
    let sum = 0;
    for (let i = 0; i < s.length; i++) {
      let x = +s[s.length - 1 - i];
      if (i % 2) { x *= 2; if (x > 9) x -= 9; }
      sum += x;
    }
    return sum % 10 === 0;
  };
  const allowed = (el) => {
    const type = (el.type || '').toLowerCase();
    return !!el.name && !el.disabled && !SKIP_TYPES.test(type) && !el.closest('[data-leadline-ignore]')
      && !/\bcc-/.test(el.getAttribute('autocomplete') || '') && !SENSITIVE.test(el.name);
  };
  const fields = (form) => {
    const out = {};
    for (const el of Array.from(form.elements)) {
      if (!allowed(el) || Object.keys(out).length >= 50) continue;
      const type = el.type.toLowerCase();
      if (quiet && (PERSONAL.test(el.name) || type === 'email' || type === 'tel')) continue;
      let v;
      if (type === 'checkbox') {
        if (el.value === 'on') v = el.checked;
        else if (el.checked) v = el.value;
        else continue;
      } else if (type === 'radio') {
        if (!el.checked) continue;
        v = el.value;
      } else if (type === 'select-multiple') v = Array.from(el.selectedOptions, (o) => o.value);
      else v = String(el.value).slice(0, 1000);
      if (typeof v === 'string' && (luhn(v) || (quiet && v.includes('@')))) continue;
      out[el.name] = el.name in out ? [].concat(out[el.name], v) : v;
    }
    return out;
  };
  const TRAITS = [['email', /e-?mail/], ['phone', /phone|mobile|^tel/], ['first_name', /first_?name/],
    ['last_name', /last_?name|surname/], ['name', /^(full_?)?name$/], ['company', /company|organi[sz]ation/]];
  const traitsOf = (form) => {
    const t = {};
    for (const el of Array.from(form.elements)) {
      const v = String(el.value || '').trim(), name = (el.name || '').toLowerCase(), type = (el.type || '').toLowerCase();
      if (!v || !allowed(el)) continue;
      const hit = type === 'email' ? 'email' : type === 'tel' ? 'phone' : (TRAITS.find(([, re]) => re.test(name)) || [])[0];
      if (hit && !t[hit]) t[hit] = v.slice(0, 200);
    }
    return t.email && t.email.includes('@') ? t : null;
  };

  const onSubmit = (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || form.hasAttribute('data-leadline-ignore')) return;
    const raw = (ev.submitter && ev.submitter.getAttribute('formaction')) || form.getAttribute('action') || '';
    if (new URL(raw, location.href).href.startsWith(base + '/f/')) return; // the collector captures those itself
    const id = form.getAttribute('id') || form.getAttribute('name') || raw || location.pathname;
    send(build('form_submit', { form: { id, fields: fields(form) } }));
    const traits = quiet ? null : traitsOf(form);
    if (traits) send(build('identify', { traits }));
  };

  const page = (props) => {
    const ref = lastUrl || d.referrer;
    lastUrl = location.href;
    send(build('page_view', { props: obj(props), ref }));
  };
  const track = (name, props) => {
    if (typeof name === 'string' && name) send(build('track', { name: name.slice(0, 128), props: obj(props) }));
  };
  // leadline('purchase', {order_id, products: [{sku, quantity, price}], revenue, currency}): Segment's e-commerce
  // 'Order Completed', which crm-core records as purchases, once per order id (marketing/orders.py).
  const purchase = (order) => {
    const o = obj(order), id = typeof o.order_id === 'number' ? String(o.order_id) : o.order_id;
    if (typeof id !== 'string' || !id || !Array.isArray(o.products)) return;
    const products = o.products.filter((p) => p && typeof p === 'object' && typeof p.sku === 'string' && p.sku);
    send(build('track', { name: 'Order Completed', props: Object.assign(o, { order_id: id, products }) }));
  };
  const identify = (traits, more) => {
    if (quiet) return;
    const t = typeof traits === 'string' || typeof traits === 'number'
      ? Object.assign({}, obj(more), { user_id: String(traits) }) : obj(traits);
    if (Object.keys(t).length) send(build('identify', { traits: t }));
  };
  const setConsent = (c) => {
    const has = (k) => c && typeof c === 'object' && k in c;
    consent = {
      analytics: has('analytics') ? !!c.analytics : consent.analytics,
      marketing: has('marketing') ? !!c.marketing : consent.marketing,
    };
    decided = true;
    store.set(CONSENT, consent);
    const waiting = held;
    held = [];
    if (consent.analytics) {
      adopt();
      waiting.forEach((e) => { e.consent = flags(); send(e); });
    } else {
      queue = [];
      save();
      dropStored();
    }
  };

  const api = { page, track, purchase, identify, consent: setConsent };
  const leadline = function (cmd, ...args) {
    try {
      if (Object.prototype.hasOwnProperty.call(api, cmd)) api[cmd](...args);
    } catch (_) { /* a capture bug must never break the host page */ }
  };
  leadline.loaded = true;
  const early = prior && Array.isArray(prior.q) ? prior.q.map((a) => Array.from(a)) : [];
  w.leadline = leadline;

  // Consent calls made before load apply first, so the automatic page view already carries them.
  early.filter((a) => a[0] === 'consent').forEach((a) => leadline(...a));
  if (consent.analytics) adopt();
  page();
  early.filter((a) => a[0] !== 'consent').forEach((a) => leadline(...a));

  const spa = () => setTimeout(() => { if (location.href !== lastUrl) page(); }, 0);
  const push = history.pushState;
  history.pushState = function () {
    const r = push.apply(this, arguments);
    spa();
    return r;
  };
  w.addEventListener('popstate', spa);
  d.addEventListener('submit', onSubmit, true);
  d.addEventListener('visibilitychange', () => { if (d.visibilityState === 'hidden') beacon(); });
  w.addEventListener('pagehide', beacon);
})();
