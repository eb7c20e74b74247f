// MathJax settings for pymdownx.arithmatex (generic mode): the extension wraps
// math in \( \) and \[ \] inside elements of class "arithmatex". A heading's
// entry in the table of contents is plain text ("Why \(a\) and not \(h\)"), so
// the theme's navigation links (class "md-nav__link", and the "md-ellipsis" label
// inside them) are typeset too. MathJax itself is served from the site
// (javascripts/mathjax/, copied in by tools/mkdocs_offline_math.py).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|md-nav__link|md-ellipsis"
  }
};

document$.subscribe(() => {
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
