// Leadline web workspace: the little behaviour pages need, with no inline script (the CSP forbids it).
"use strict";

// htmx requests carry the page's CSRF token, like the forms' hidden _csrf field.
document.addEventListener("htmx:configRequest", (event) => {
  const token = document.body.dataset.csrf;
  if (token) event.detail.headers["X-CSRF-Token"] = token;
});

// <form data-confirm="Merge these two persons?">: ask before a destructive or irreversible post.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// <button data-copy="#embed">: copy a code block (embed codes, tracking URLs) to the clipboard.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent).then(() => { button.textContent = "Copied"; });
  }
});

// <figure class="chart" data-chart='{"type":"line"|"bar","labels":[...],"series":[{"label":..,"values":[..]}]}'>
// drawn with the vendored uPlot. Labels are category names or ISO dates; values are numbers (optional: "zero",
// "bands" and a series' "style", below).
const PALETTE = ["#2857c5", "#f5a524", "#067647", "#b42318", "#7a5af8", "#0e9384"];

function drawChart(figure) {
  if (typeof uPlot === "undefined" || figure.dataset.drawn) return;
  const spec = JSON.parse(figure.dataset.chart);
  const dated = spec.labels.length > 0 && /^\d{4}-\d{2}-\d{2}/.test(String(spec.labels[0]));
  const xs = dated ? spec.labels.map((l) => Date.parse(l) / 1000) : spec.labels.map((_, i) => i);
  const bars = spec.type === "bar" ? uPlot.paths.bars({ size: [0.6, 64] }) : undefined;
  // Optional (issue 13): a series with "style": "points" is drawn as dots only; "bands": [[upper, lower], ...]
  // (indices into series) shades the interval between two series; "zero": true starts the y axis at 0.
  const series = [{ label: spec.xLabel || "" }].concat(spec.series.map((s, i) => ({
    label: s.label, stroke: PALETTE[i % PALETTE.length], fill: bars ? PALETTE[i % PALETTE.length] + "99" : undefined,
    width: s.style === "points" ? 0 : 2, paths: s.style === "points" ? () => null : bars,
    points: s.style === "points" ? { show: true, size: 9 } : { show: !bars },
  })));
  const bands = (spec.bands || []).map(([upper, lower]) => ({
    series: [upper + 1, lower + 1], fill: PALETTE[upper % PALETTE.length] + "33",
  }));
  const scales = { x: { time: dated } };
  if (spec.zero) scales.y = { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] };
  // Category names are slanted so long ones do not overprint; big values are shortened (12k, 1.5M).
  const compact = (v) => Math.abs(v) >= 1e6 ? `${+(v / 1e6).toFixed(1)}M` : Math.abs(v) >= 1e4 ? `${+(v / 1e3).toFixed(1)}k` : `${+v.toFixed(2)}`;
  const axes = [
    dated ? {} : { values: (u, ticks) => ticks.map((t) => spec.labels[t] ?? ""), rotate: -25, size: 64 },
    { size: 56, values: (u, ticks) => ticks.map(compact) },
  ];
  const width = Math.max(figure.clientWidth - 16, 240);
  const options = { width, height: spec.height || 220, series, axes, scales };
  if (bands.length) options.bands = bands;
  new uPlot(options,
    [xs].concat(spec.series.map((s) => s.values)), figure);
  figure.dataset.drawn = "1";
}

function drawCharts(root) { root.querySelectorAll("figure.chart[data-chart]").forEach(drawChart); }
document.addEventListener("DOMContentLoaded", () => drawCharts(document));
document.addEventListener("htmx:afterSettle", (event) => drawCharts(event.target));

// The deal board (issue 15): drag a card onto another column to move the deal. The drop fills the card's own move
// form (the one a click posts without JavaScript) and submits it; htmx posts it and the server asks for a refresh.
// A lost stage needs a reason, asked for here.
let draggedDeal = null;
document.addEventListener("dragstart", (event) => {
  const card = event.target.closest && event.target.closest(".deal-card[data-deal]");
  if (!card) return;
  draggedDeal = card;
  event.dataTransfer.setData("text/plain", card.dataset.deal);
  event.dataTransfer.effectAllowed = "move";
});
document.addEventListener("dragover", (event) => {
  const column = event.target.closest && event.target.closest(".board-col[data-stage]");
  if (!column || !draggedDeal) return;
  event.preventDefault();
  column.classList.add("drop-target");
});
document.addEventListener("dragleave", (event) => {
  const column = event.target.closest && event.target.closest(".board-col[data-stage]");
  if (column && !column.contains(event.relatedTarget)) column.classList.remove("drop-target");
});
document.addEventListener("drop", (event) => {
  const column = event.target.closest && event.target.closest(".board-col[data-stage]");
  const card = draggedDeal;
  draggedDeal = null;
  document.querySelectorAll(".drop-target").forEach((c) => c.classList.remove("drop-target"));
  if (!column || !card || card.closest(".board-col") === column) return;
  event.preventDefault();
  const form = card.querySelector("form.move");
  if (!form) return;
  form.querySelector("select[name=stage_id]").value = column.dataset.stage;
  if (column.dataset.kind === "lost") {
    const reason = window.prompt("Why was this deal lost?");
    if (!reason) return;
    form.querySelector("input[name=reason]").value = reason;
  }
  column.appendChild(card);
  form.requestSubmit();
});
// A refused move (a lost deal without a reason) says why.
document.addEventListener("htmx:responseError", (event) => {
  if (event.target.matches && event.target.matches("form.move")) window.alert(event.detail.xhr.responseText);
});
