// tokatlas report site: sortable and filterable tables, figure load check.
// No dependencies and no network: the pages open from file://.
// State is written onto the DOM (data-* attributes) so a headless browser's DOM dump shows
// what rendered: <body data-rendered data-images-loaded data-images-total data-tables>.
(function () {
  "use strict";

  function value(td) {
    // Numeric cells carry their raw value in data-v ("" = missing); others sort by text.
    var v = td.getAttribute("data-v");
    if (v !== null) { return v === "" ? null : Number(v); }
    return td.textContent.trim().toLowerCase();
  }

  function compare(a, b) {
    if (a === null && b === null) { return 0; }
    if (a === null) { return 1; }  // missing values last in either direction
    if (b === null) { return -1; }
    if (typeof a === "number" && typeof b === "number") { return a - b; }
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  function sortTable(table, key, dir) {
    var ths = table.tHead.rows[0].cells, col = -1;
    for (var i = 0; i < ths.length; i++) {
      ths[i].removeAttribute("aria-sort");
      if (ths[i].getAttribute("data-key") === key) { col = i; }
    }
    if (col < 0) { return false; }
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = dir === "desc" ? -1 : 1;
    rows = rows.map(function (r, i) { return [value(r.cells[col]), i, r]; });
    rows.sort(function (x, y) {
      var c = compare(x[0], y[0]);
      if (x[0] !== null && y[0] !== null) { c *= sign; }
      return c || x[1] - y[1];  // stable
    });
    rows.forEach(function (x) { body.appendChild(x[2]); });
    ths[col].setAttribute("aria-sort", dir === "desc" ? "descending" : "ascending");
    table.setAttribute("data-sorted", key + ":" + (dir === "desc" ? "desc" : "asc"));
    return true;
  }

  function filterTable(table, text) {
    var words = text.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
    var rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var t = rows[i].textContent.toLowerCase();
      var ok = words.every(function (w) { return t.indexOf(w) >= 0; });
      rows[i].hidden = !ok;
      if (ok) { shown++; }
    }
    table.setAttribute("data-visible", String(shown));
    var count = document.querySelector('[data-count-for="' + table.id + '"]');
    if (count) { count.textContent = shown + " of " + rows.length + " rows"; }
    var box = document.querySelector('input[data-filter-for="' + table.id + '"]');
    if (box && box.value !== text) { box.value = text; }
  }

  function setUp(table) {
    var ths = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th) {
      th.tabIndex = 0;
      th.title = "click to sort";
      var go = function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        sortTable(table, th.getAttribute("data-key"), asc ? "asc" : "desc");
      };
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { go(); } });
    });
    var box = document.querySelector('input[data-filter-for="' + table.id + '"]');
    if (box) { box.addEventListener("input", function () { filterTable(table, box.value); }); }
    table.setAttribute("data-rows", String(table.tBodies[0].rows.length));
    filterTable(table, box ? box.value : "");
  }

  // #sort=<table id>:<column key>[:desc]&filter=<table id>:<text>  (several of each allowed)
  function applyHash() {
    var h = decodeURIComponent(location.hash.replace(/^#/, ""));
    if (!h) { return; }
    h.split("&").forEach(function (part) {
      var eq = part.indexOf("=");
      if (eq < 0) { return; }
      var what = part.slice(0, eq), args = part.slice(eq + 1).split(":");
      var table = document.getElementById(args[0]);
      if (!table || table.tagName !== "TABLE") { return; }
      if (what === "sort" && args.length >= 2) { sortTable(table, args[1], args[2] === "desc" ? "desc" : "asc"); }
      if (what === "filter") { filterTable(table, args.slice(1).join(":")); }
    });
  }

  function checkImages(done) {
    var imgs = Array.prototype.slice.call(document.images), pending = imgs.length;
    if (!pending) { done(0, 0); return; }
    var finish = function () {
      if (--pending > 0) { return; }
      var ok = 0;
      imgs.forEach(function (img) {
        var good = img.complete && img.naturalWidth > 0;
        img.setAttribute("data-loaded", good ? "1" : "0");
        if (good) { ok++; }
      });
      done(ok, imgs.length);
    };
    imgs.forEach(function (img) {
      if (img.complete) { finish(); } else {
        img.addEventListener("load", finish);
        img.addEventListener("error", finish);
      }
    });
  }

  function init() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, setUp);
    applyHash();
    window.addEventListener("hashchange", applyHash);
    document.body.setAttribute("data-tables", String(tables.length));
    checkImages(function (ok, total) {
      document.body.setAttribute("data-images-loaded", String(ok));
      document.body.setAttribute("data-images-total", String(total));
      document.body.setAttribute("data-rendered", "1");
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
