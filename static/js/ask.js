// The question box (templates/sessions/_ask.html): posts the form with partial=1 and swaps in
// the box the server renders, answer included, so the page stays where it is. Without
// JavaScript the same form posts to the answer's own page.
(function () {
  "use strict";

  const fill = (text, values) => interpolate(text, values, true);

  async function submit(section, form) {
    const button = form.querySelector("button[type=submit]");
    const status = section.querySelector(".ask-status");
    const body = new FormData(form);
    body.set("partial", "1");
    if (button) button.disabled = true;
    section.setAttribute("aria-busy", "true");
    if (status) status.textContent = gettext("Looking through your meetings…");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      const holder = document.createElement("div");
      holder.innerHTML = (await response.text()).trim();
      const fresh = holder.querySelector("#ask");
      if (!fresh) {
        throw new Error(
          fill(gettext("The question could not be answered (error %(status)s). Try again."), {
            status: response.status,
          }),
        );
      }
      fresh.querySelectorAll("script, link").forEach((el) => el.remove());
      section.replaceWith(fresh);
      const focus = fresh.querySelector(".ask-error, .ask-answer h3, .ask-not-found");
      if (focus) {
        focus.tabIndex = -1;
        focus.focus();
      }
    } catch (error) {
      if (status) {
        status.textContent =
          error instanceof TypeError
            ? gettext("The question could not be sent: the connection failed. Try again.")
            : error.message;
      }
      if (button) button.disabled = false;
      section.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target.closest(".ask-form");
    const section = form && form.closest("#ask");
    if (!section) return;
    event.preventDefault();
    if (section.getAttribute("aria-busy") !== "true") submit(section, form);
  });
})();
