// osgate's technician pages: what a script adds to pages that work
// without one. Live device states and values (server-sent events from
// /ui/events), a periodic refresh of the other read-only pages, progress
// and answers of actions in place (/ui/act with Accept:
// application/x-ndjson), times in the browser's own time zone, and copy
// buttons. No library; nothing leaves the gateway.
"use strict";
(function () {
  var TREND_MS = 10 * 60 * 1000, STEP_MS = 5000;

  // --- times: "12 s ago", the local time as a tooltip ---------------
  function span(ms) {
    var s = Math.floor(ms / 1000);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 172800) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " d";
  }
  function ago(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) return "";
    var d = Date.now() - t;
    if (d < 0) return "in " + span(-d);
    if (d < 1000) return "just now";
    return span(d) + " ago";
  }
  function tick() {
    var els = document.querySelectorAll("time[data-ago]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i], iso = el.getAttribute("datetime");
      var text = ago(iso);
      if (text && el.textContent !== text) el.textContent = text;
      if (!el.title && iso) el.title = new Date(iso).toLocaleString();
    }
  }

  // --- sparklines --------------------------------------------------
  function drawSpark(svg, pts) {
    var w = +svg.getAttribute("width"), h = +svg.getAttribute("height");
    // As the server draws it: the points kept, at most the last 10 minutes.
    var end = Math.max(Date.now(), pts.length ? pts[pts.length - 1][0] : 0);
    var start = Math.max(end - TREND_MS, pts.length ? pts[0][0] : 0), lo = Infinity, hi = -Infinity;
    if (end - start < 1000) start = end - 1000;
    pts.forEach(function (p) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); });
    var line = svg.querySelector("polyline");
    if (!line) {
      line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      svg.appendChild(line);
    }
    line.setAttribute("points", pts.map(function (p) {
      var x = Math.max(0, Math.min(w, (p[0] - start) / (end - start) * w));
      var y = hi > lo ? 1 + (hi - p[1]) / (hi - lo) * (h - 2) : h / 2;
      return x.toFixed(1) + "," + y.toFixed(1);
    }).join(" "));
  }
  function addPoint(holder, name, seen, n) {
    var svg = holder.querySelector("svg.spark");
    if (!svg) {
      var size = (holder.getAttribute("data-spark") || "96x22").split("x");
      svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("class", "spark");
      svg.setAttribute("width", size[0]);
      svg.setAttribute("height", size[1]);
      svg.setAttribute("viewBox", "0 0 " + size[0] + " " + size[1]);
      svg.setAttribute("role", "img");
      svg.setAttribute("data-trend", "[]");
      holder.appendChild(svg);
    }
    var pts = [];
    try { pts = JSON.parse(svg.getAttribute("data-trend")) || []; } catch (e) { pts = []; }
    var last = pts[pts.length - 1];
    if (last && seen <= last[0]) return;
    if (last && Math.floor(last[0] / STEP_MS) === Math.floor(seen / STEP_MS)) pts[pts.length - 1] = [seen, n];
    else pts.push([seen, n]);
    var keep = +svg.getAttribute("width") > 120 ? 120 : 40;
    pts = pts.filter(function (p) { return p[0] >= Date.now() - TREND_MS; }).slice(-keep);
    svg.setAttribute("data-trend", JSON.stringify(pts));
    var lo = Math.min.apply(null, pts.map(function (p) { return p[1]; }));
    var hi = Math.max.apply(null, pts.map(function (p) { return p[1]; }));
    svg.setAttribute("aria-label", "trend of " + name + " over the last 10 minutes: from " + lo + " to " + hi);
    drawSpark(svg, pts);
  }

  // --- live device updates -----------------------------------------
  function field(root, name) { return root.querySelector('[data-f="' + name + '"]'); }
  function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }
  function updateDevice(ev) {
    var roots = document.querySelectorAll('[data-dev="' + CSS.escape(ev.name) + '"]');
    for (var i = 0; i < roots.length; i++) {
      var root = roots[i];
      var st = field(root, "state");
      if (st) { st.className = "badge s-" + ev.state; setText(st, ev.state_text); }
      var since = field(root, "since");
      if (since) {
        var t = since.querySelector("time");
        if (t && t.getAttribute("datetime") !== ev.since) { t.setAttribute("datetime", ev.since); t.title = ""; }
      }
      setText(field(root, "reason"), ev.reason || "");
      setText(field(root, "failures"), String(ev.failures));
      setText(field(root, "last_error"), ev.last_error || "—");
      ev.channels.forEach(function (ch) {
        var el = root.querySelector('[data-ch="' + CSS.escape(ch.channel) + '"]');
        if (!el) return;
        var v = field(el, "text");
        if (v) { setText(v, ch.text); v.className = "v q-" + (ch.quality || ""); }
        var errs = field(el, "errors");
        if (errs) {
          if (el.tagName === "LI") { setText(errs, ch.errors + " failed"); errs.hidden = !ch.errors; }
          else setText(errs, String(ch.errors));
        }
        if (ch.n !== undefined && ch.n !== null && ch.seen) {
          addPoint(el.querySelector("[data-spark]") || el, ch.channel, ch.seen, ch.n);
        }
      });
    }
  }
  // The devices page's counts by state, from the badges it shows.
  var STATES = ["online", "degraded", "offline", "unknown", "disabled"];
  function recount() {
    var p = document.querySelector("p[data-counts]");
    if (!p) return;
    var n = {}, badges = document.querySelectorAll('tr[data-dev] [data-f="state"]');
    for (var i = 0; i < badges.length; i++) {
      var s = badges[i].className.replace(/^badge s-/, "");
      n[s] = (n[s] || 0) + 1;
    }
    var text = STATES.filter(function (s) { return n[s]; }).map(function (s) { return n[s] + " " + s; }).join(" ");
    if (p.getAttribute("data-now") === text) return;
    p.setAttribute("data-now", text);
    p.textContent = "";
    STATES.forEach(function (s) {
      if (!n[s]) return;
      var b = document.createElement("span");
      b.className = "badge s-" + s;
      b.textContent = n[s] + " " + s;
      p.appendChild(b);
      p.appendChild(document.createTextNode(" "));
    });
  }
  function follow(url) {
    var es = new EventSource(url);
    es.addEventListener("device", function (e) { updateDevice(JSON.parse(e.data)); recount(); });
    es.addEventListener("signout", function () { es.close(); location.assign("/ui/login?next=" + encodeURIComponent(location.pathname)); });
    window.addEventListener("pagehide", function () { es.close(); });
  }

  // --- refresh of the other read-only pages -------------------------
  function busy(main) {
    var a = document.activeElement;
    return (a && main.contains(a) && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(a.tagName)) || document.hidden;
  }
  function refresh(main, secs) {
    setInterval(function () {
      if (busy(main)) return;
      fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" }).then(function (r) {
        if (r.redirected || !r.ok) return null;
        return r.text();
      }).then(function (html) {
        if (!html || busy(main)) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("main");
        if (next) { main.innerHTML = next.innerHTML; tick(); }
      }).catch(function () {});
    }, secs * 1000);
  }

  // --- actions ----------------------------------------------------
  function resultArea(form) {
    return document.getElementById("result") || form.parentNode;
  }
  function showResult(area, html) {
    area.innerHTML = html;
    var h = area.querySelector("h2");
    if (h) { h.focus(); }
    initCopy(area);
    tick();
  }
  function submitAction(e) {
    var form = e.target;
    if (!form.classList || !form.classList.contains("act")) return;
    e.preventDefault();
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    var prog = form.querySelector(".progress"), bar = prog && prog.querySelector("progress"), text = prog && prog.querySelector("[data-progress-text]");
    if (prog) { prog.hidden = false; if (bar) bar.removeAttribute("value"); setText(text, "started"); }
    var area = resultArea(form);
    var body = new URLSearchParams(new FormData(form));
    // form.action would be the form's input named "action": read the attribute.
    fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin",
      headers: { Accept: "application/x-ndjson", "Content-Type": "application/x-www-form-urlencoded" } }).then(function (r) {
      if (!r.ok) return r.text().then(function (t) { throw new Error(t || r.statusText); });
      var reader = r.body.getReader(), dec = new TextDecoder(), buf = "";
      function handle(line) {
        if (!line) return;
        var m = JSON.parse(line);
        if (m.progress && prog) {
          if (m.progress.total && bar) { bar.max = m.progress.total; bar.value = m.progress.done; }
          setText(text, m.progress.text);
        }
        if (m.html !== undefined) showResult(area, m.html);
      }
      function pump() {
        return reader.read().then(function (x) {
          if (x.done) { handle(buf.trim()); return; }
          buf += dec.decode(x.value, { stream: true });
          var lines = buf.split("\n");
          buf = lines.pop();
          lines.forEach(handle);
          return pump();
        });
      }
      return pump();
    }).catch(function (err) {
      var s = document.createElement("section");
      s.className = "result bad";
      var p = document.createElement("p");
      p.className = "err";
      p.setAttribute("role", "alert");
      p.textContent = "The action did not run: " + err.message;
      s.appendChild(p);
      area.innerHTML = "";
      area.appendChild(s);
    }).then(function () {
      buttons.forEach(function (b) { b.disabled = false; });
      if (prog) prog.hidden = true;
    });
  }

  // --- copy buttons -------------------------------------------------
  function initCopy(root) {
    var btns = root.querySelectorAll("button.copy[data-copy]");
    for (var i = 0; i < btns.length; i++) {
      var b = btns[i];
      b.hidden = false;
      b.addEventListener("click", function (e) {
        var btn = e.currentTarget, src = document.getElementById(btn.getAttribute("data-copy"));
        if (!src) return;
        var done = function () { btn.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(src.value).then(done, function () { src.select(); });
        } else {
          src.select();
          try { if (document.execCommand("copy")) done(); } catch (err) { /* selected for the user to copy */ }
        }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var main = document.getElementById("main");
    tick();
    setInterval(tick, 1000);
    initCopy(document);
    document.addEventListener("submit", submitAction);
    if (!main) return;
    var live = main.getAttribute("data-live"), every = +main.getAttribute("data-refresh");
    if (live && window.EventSource) follow(live);
    else if (every > 0) refresh(main, every);
  });
})();
