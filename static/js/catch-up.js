// "Catch me up" (templates/sessions/_catch_up.html): the button fetches the summary card
// (GET /sessions/<slug>/catch-up/?partial=1) and swaps it in; without JavaScript it is a link to
// the same summary on its own page. A point's time scrolls the live sidebar to its line (the
// transcript sidebar's li[data-utterance-id]); a line not shown here follows the link (?t=).
(function () {
  "use strict";

  const FLASH_MS = 2500;
  const fill = (text, values) => interpolate(text, values, true);

  function showError(section, message) {
    const box = section.querySelector(".catch-up-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = !message;
  }

  async function load(section, button) {
    const status = section.querySelector(".catch-up-status");
    button.setAttribute("aria-disabled", "true");
    section.setAttribute("aria-busy", "true");
    if (status) status.textContent = gettext("Summarising…");
    showError(section, "");
    try {
      const response = await fetch(section.dataset.url, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok) {
        throw new Error(
          fill(gettext("Could not catch you up (error %(status)s). Try again."), {
            status: response.status,
          }),
        );
      }
      const holder = document.createElement("div");
      holder.innerHTML = (await response.text()).trim();
      const fresh = holder.querySelector("#catch-up");
      if (!fresh) throw new Error(gettext("Could not catch you up. Try again."));
      fresh.querySelectorAll("script, link").forEach((el) => el.remove());
      section.replaceWith(fresh);
      const again = fresh.querySelector("#btn-catch-up");
      if (again) again.focus();
    } catch (error) {
      const message =
        error instanceof TypeError
          ? gettext("Could not catch you up: the connection failed. Try again.")
          : error.message;
      showError(section, message);
      if (status) status.textContent = "";
      button.removeAttribute("aria-disabled");
      section.removeAttribute("aria-busy");
    }
  }

  function lineOf(id) {
    const list = document.getElementById("transcript-lines");
    return list ? list.querySelector(`li[data-utterance-id="${CSS.escape(id)}"]`) : null;
  }

  document.addEventListener("click", (event) => {
    const section = event.target.closest("#catch-up");
    if (!section) return;
    const button = event.target.closest("#btn-catch-up");
    if (button) {
      event.preventDefault();
      if (button.getAttribute("aria-disabled") !== "true") load(section, button);
      return;
    }
    if (event.target.closest(".catch-up-hide")) {
      const result = section.querySelector(".catch-up-result");
      if (result) result.remove();
      event.target.closest(".catch-up-hide").remove();
      return;
    }
    const moment = event.target.closest("a[data-utterance-id]");
    const line = moment && lineOf(moment.dataset.utteranceId);
    if (!line) return;
    event.preventDefault();
    line.scrollIntoView({ block: "center", behavior: "smooth" });
    line.classList.add("catch-up-target");
    window.setTimeout(() => line.classList.remove("catch-up-target"), FLASH_MS);
  });
})();
