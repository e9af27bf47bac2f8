// The desk's own script (no inline scripts: the CSP forbids them).
// A refused or expired session answers htmx with a page: show it rather than nothing.
document.addEventListener("htmx:responseError", function (e) {
  var xhr = e.detail.xhr;
  if (xhr.status === 401 || xhr.status === 403) {
    document.open(); document.write(xhr.responseText); document.close();
  }
});
