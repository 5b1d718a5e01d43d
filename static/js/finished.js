// The finished-session page (templates/sessions/finished.html). The transcript is paginated by
// speaker turns, so a "#t-<seconds>" link (from the analysis, or shared) may point at a moment
// that is not a turn start on this page: ask the server, which redirects to the page and turn
// that contain that moment.
(function () {
  "use strict";

  function follow() {
    const match = window.location.hash.match(/^#t-(\d+)$/);
    if (!match || document.getElementById(`t-${match[1]}`)) return;
    const params = new URLSearchParams(window.location.search);
    params.delete("page");
    params.set("t", match[1]);
    window.location.replace(`${window.location.pathname}?${params}`);
  }

  window.addEventListener("hashchange", follow);
  follow();
})();
