// moat UI: the policy editor. Keeps the line-number gutter in step with
// the textarea (its lines and its scrolling), and makes links to a
// line:col (data-line, data-col) put the cursor there. Without this
// script the gutter shows the lines as loaded and the links jump to them.
(function () {
  var text = document.getElementById("policy-text");
  var gutter = document.getElementById("policy-gutter");
  if (!text || !gutter) return;

  function renumber() {
    var n = text.value.split("\n").length;
    var have = gutter.children.length;
    if (n === have) return;
    for (; have < n; have++) {
      var s = document.createElement("span");
      s.id = "L" + (have + 1);
      s.textContent = String(have + 1);
      gutter.appendChild(s);
      gutter.appendChild(document.createTextNode("\n"));
    }
    while (gutter.children.length > n) {
      var last = gutter.lastElementChild;
      if (last.nextSibling) gutter.removeChild(last.nextSibling);
      gutter.removeChild(last);
    }
  }
  function sync() { gutter.scrollTop = text.scrollTop; }

  // goTo selects line:col in the editor and scrolls it into view.
  function goTo(line, col) {
    var lines = text.value.split("\n");
    line = Math.max(1, Math.min(line, lines.length));
    var off = 0;
    for (var i = 0; i < line - 1; i++) off += lines[i].length + 1;
    off += Math.max(0, Math.min((col || 1) - 1, lines[line - 1].length));
    text.focus();
    text.setSelectionRange(off, off);
    var lh = parseFloat(getComputedStyle(text).lineHeight) || 18;
    text.scrollTop = Math.max(0, (line - 3) * lh);
    sync();
    text.scrollIntoView({ block: "nearest" });
  }

  text.addEventListener("input", renumber);
  text.addEventListener("scroll", sync);
  document.addEventListener("click", function (e) {
    var a = e.target.closest("a[data-line]");
    if (!a) return;
    e.preventDefault();
    goTo(parseInt(a.getAttribute("data-line"), 10), parseInt(a.getAttribute("data-col"), 10));
  });
  renumber();
})();
