/* The dashboard's behaviour: draw charts from the server's columnar JSON, keep the chosen
 * percentile in the URL, and refresh tables and charts in place every data-refresh-s. */
"use strict";
(function () {
  const charts = window.InferloopCharts;
  const refreshMs = 1000 * Number(document.body.dataset.refreshS || 15);
  let seriesData = null;

  function drawSparks(root) {
    for (const svg of root.querySelectorAll("svg[data-spark]")) {
      const raw = svg.dataset.spark;
      charts.spark(svg, raw ? raw.split(",").map(Number) : []);
    }
  }

  function setState(name, text, isError) {
    const node = document.querySelector(`[data-state="${name}"]`);
    if (!node) return;
    node.textContent = text;
    node.classList.toggle("error", Boolean(isError));
  }

  function drawModel(container) {
    const data = seriesData;
    if (!data) return;
    const p = container.dataset.percentile;
    const span = { start: data.start_s, end: data.end_s, markers: data.markers, t: data.total.t };
    const versions = Object.entries(data.versions);
    const latency = [{ name: "all " + p, values: data.total[p] }].concat(
      versions.map(([v, s]) => ({ name: "v" + v, values: s[p] })));
    const perSecond = (counts, gaps) => counts.map((c) => (gaps && c === 0 ? null : c / data.step_s));
    // A version's line stops where it served nothing; the total's drops to zero.
    const throughput = [{ name: "all", values: perSecond(data.total.count, false) }].concat(
      versions.map(([v, s]) => ({ name: "v" + v, values: perSecond(s.count, true) })));
    const errors = [{ name: "errors", values: data.total.errors }];
    const calls = data.total.count.reduce((a, b) => a + b, 0);
    const empty = calls === 0 ? `no calls in the last ${data.range}: pick a longer range` : "";
    charts.line(container.querySelector('[data-chart="latency"]'), { ...span, lines: latency, unit: " ms" });
    charts.line(container.querySelector('[data-chart="throughput"]'), { ...span, lines: throughput });
    charts.line(container.querySelector('[data-chart="errors"]'), { ...span, lines: errors });
    for (const name of ["latency", "throughput", "errors"]) setState(name, empty);
    const gpu = container.querySelector('[data-chart="gpu"]');
    if (gpu) {
      const total = data.total;
      charts.line(gpu, { ...span, unit: " ms",
        lines: [{ name: "mean", values: total.gpu_mean }, { name: "max", values: total.gpu_max }] });
      const measured = total.gpu_count.reduce((a, b) => a + b, 0);
      setState("gpu", measured ? "" : `no call in the last ${data.range} measured GPU time`);
    }
  }

  async function loadSeries(container) {
    try {
      const response = await fetch(container.dataset.series, { credentials: "same-origin" });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(body.detail || `HTTP ${response.status}`);
      }
      seriesData = await response.json();
      drawModel(container);
      if (!performance.getEntriesByName("inferloop:chart-drawn").length) performance.mark("inferloop:chart-drawn");
    } catch (error) {
      for (const name of ["latency", "throughput", "errors", "gpu"]) setState(name, "could not load the series: " + error.message, true);
    }
  }

  function setupModel() {
    const container = document.querySelector(".charts[data-series]");
    if (!container) return;
    const select = container.querySelector("[data-percentile-select]");
    select.addEventListener("change", () => {
      container.dataset.percentile = select.value;
      const url = new URL(window.location.href);
      url.searchParams.set("p", select.value);
      window.history.replaceState(null, "", url);
      for (const link of document.querySelectorAll("a[data-range]")) {
        const target = new URL(link.href);
        target.searchParams.set("p", select.value);
        link.href = target.toString();
      }
      drawModel(container);
    });
    let width = window.innerWidth;
    window.addEventListener("resize", () => {
      if (Math.abs(window.innerWidth - width) > 40) { width = window.innerWidth; drawModel(container); }
    });
    loadSeries(container);
    return () => loadSeries(container);
  }

  async function refreshPanels() {
    const panels = document.querySelectorAll("[data-refresh]");
    if (!panels.length) return;
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const panel of panels) {
      const next = fresh.querySelector(`[data-refresh="${panel.dataset.refresh}"]`);
      if (next) panel.innerHTML = next.innerHTML;
    }
    drawSparks(document);
  }

  function stamp() {
    const node = document.querySelector("[data-updated]");
    if (node) node.textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC · refreshes every " + refreshMs / 1000 + " s";
  }

  // A heatmap wider than the screen opens on its newest windows, the ones people look for.
  function showNewestDrift() {
    for (const section of document.querySelectorAll("section.drift")) section.scrollLeft = section.scrollWidth;
  }

  document.addEventListener("DOMContentLoaded", () => {
    drawSparks(document);
    showNewestDrift();
    const reloadSeries = setupModel();
    stamp();
    window.setInterval(async () => {
      try {
        await Promise.all([refreshPanels(), reloadSeries ? reloadSeries() : null]);
        stamp();
      } catch (error) {
        const node = document.querySelector("[data-updated]");
        if (node) node.textContent = "refresh failed: " + error.message;
      }
    }, refreshMs);
  });
})();
