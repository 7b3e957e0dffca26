/* Inferloop's own small SVG line charts: no WebGL (headless Chromium has none), no library.
 * InferloopCharts.line(svg, {t, lines: [{name, values}], markers: [{t, label, state}], unit})
 * draws into `svg` in place (its old content is replaced) and records on the element
 * `data-points` (the points of the first line that have a value) and `data-drawn`. */
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f4e79", "#e8590c", "#2f9e44", "#7048e8", "#c2255c", "#1098ad", "#5c940d"];
  const PAD = { left: 52, right: 12, top: 22, bottom: 24 };

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceStep(span, ticks) {
    const raw = span / Math.max(1, ticks);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = [1, 2, 5, 10].find((m) => m * power >= raw) || 10;
    return unit * power;
  }

  function timeLabel(seconds, span) {
    const d = new Date(seconds * 1000);
    const hm = d.toISOString().slice(11, 16);
    return span > 2 * 86400 ? d.toISOString().slice(5, 10) + " " + hm : hm;
  }

  function line(svg, spec) {
    const width = Math.max(200, svg.clientWidth || 600);
    const height = Math.max(120, svg.clientHeight || 240);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const t = spec.t || [];
    const lines = spec.lines || [];
    const x0 = spec.start != null ? spec.start : t[0];
    const x1 = spec.end != null ? spec.end : t[t.length - 1];
    let ymax = 0;
    for (const l of lines) for (const v of l.values) if (v != null && v > ymax) ymax = v;
    ymax = ymax > 0 ? ymax * 1.1 : 1;
    const step = niceStep(ymax, 4);
    ymax = Math.ceil(ymax / step) * step;
    const plotW = width - PAD.left - PAD.right;
    const plotH = height - PAD.top - PAD.bottom;
    const sx = (s) => PAD.left + ((s - x0) / Math.max(1, x1 - x0)) * plotW;
    const sy = (v) => PAD.top + plotH - (v / ymax) * plotH;

    for (let v = 0; v <= ymax + step / 2; v += step) {
      el("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: sy(v), y2: sy(v) }, svg);
      const label = el("text", { x: PAD.left - 6, y: sy(v) + 4, "text-anchor": "end" }, svg);
      label.textContent = (step < 1 ? v.toFixed(2) : Math.round(v).toLocaleString()) + (spec.unit || "");
    }
    el("line", { class: "axis", x1: PAD.left, x2: width - PAD.right, y1: sy(0), y2: sy(0) }, svg);
    const xticks = Math.max(2, Math.floor(plotW / 110));
    for (let i = 0; i <= xticks; i++) {
      const s = x0 + ((x1 - x0) * i) / xticks;
      const label = el("text", { x: sx(s), y: height - 6, "text-anchor": i === 0 ? "start" : i === xticks ? "end" : "middle" }, svg);
      label.textContent = timeLabel(s, x1 - x0);
    }
    let lastX = -Infinity;
    let row = 0;
    for (const m of spec.markers || []) {
      if (m.t < x0 || m.t > x1) continue;
      el("line", { class: "marker marker-" + m.state, x1: sx(m.t), x2: sx(m.t), y1: PAD.top, y2: PAD.top + plotH }, svg);
      row = sx(m.t) - lastX < 90 ? row + 1 : 0; // labels of close markers go on new rows
      lastX = sx(m.t);
      const label = el("text", { class: "marker-label", x: sx(m.t) + 3, y: PAD.top + 10 + 12 * (row % 4) }, svg);
      label.textContent = m.label;
    }
    let firstPoints = 0;
    // Drawn last to first, so the first line (the total) lies on top of the others.
    lines.map((l, index) => [l, index]).reverse().forEach(([l, index]) => {
      const color = l.color || COLORS[index % COLORS.length];
      let d = "";
      let pen = false;
      let points = 0;
      l.values.forEach((v, i) => {
        if (v == null) { pen = false; return; }
        d += (pen ? "L" : "M") + sx(t[i]).toFixed(1) + " " + sy(v).toFixed(1);
        pen = true;
        points += 1;
      });
      if (index === 0) firstPoints = points;
      if (d) el("path", { d, fill: "none", stroke: color, "stroke-width": index === 0 ? 2 : 1.5, "data-line": l.name }, svg);
      const key = el("text", { x: PAD.left + 4 + index * 90, y: 12, fill: color }, svg);
      key.textContent = l.name;
    });
    svg.setAttribute("data-points", String(firstPoints));
    svg.setAttribute("data-drawn", "1");
    return firstPoints;
  }

  function spark(svg, values) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const max = Math.max(1, ...values);
    const n = values.length;
    if (!n) return 0;
    const points = values.map((v, i) => `${((i / Math.max(1, n - 1)) * 200).toFixed(1)},${(38 - (v / max) * 36).toFixed(1)}`);
    el("polyline", { points: points.join(" "), fill: "none", stroke: "#1f4e79", "stroke-width": 1.5 }, svg);
    svg.setAttribute("data-drawn", "1");
    return n;
  }

  window.InferloopCharts = { line, spark };
})();
