// The session analysis card (templates/sessions/_analysis.html): while the analysis is pending
// or running it polls GET /api/sessions/<slug>/analysis and, once the status changes, swaps in
// the freshly rendered card. A host's "Re-run analysis" buttons (in the header, and in the note
// shown when the transcript was edited after the analysis) POST to the rerun endpoint.
// Accepting or dismissing a proposed task are plain forms that come back to #analysis.
(function () {
  "use strict";

  const POLL_MS = 3000;
  const UNFINISHED = ["PENDING", "RUNNING"];
  // Texts: Django's JavaScript catalogue, which base.html loads (gettext, interpolate).
  const fill = (text, values) => interpolate(text, values, true);

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function showError(section, message) {
    const box = section.querySelector(".analysis-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = !message;
  }

  async function swapIn(section) {
    const response = await fetch(section.dataset.partialUrl, {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    });
    if (!response.ok) {
      throw new Error(
        fill(gettext("the analysis could not be loaded (%(status)s)"), { status: response.status })
      );
    }
    const holder = document.createElement("div");
    holder.innerHTML = (await response.text()).trim();
    const fresh = holder.querySelector("#analysis");
    if (!fresh) throw new Error(gettext("the analysis could not be loaded"));
    // Scripts inside the partial do not run again when inserted this way; init does their job.
    fresh.querySelectorAll("script").forEach((script) => script.remove());
    section.replaceWith(fresh);
    init(fresh);
  }

  function poll(section) {
    const timer = window.setInterval(async () => {
      if (!section.isConnected) {
        window.clearInterval(timer);
        return;
      }
      try {
        const response = await fetch(section.dataset.statusUrl, {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        if (!response.ok) {
          const failed = gettext("status check failed (%(status)s)");
          throw new Error(fill(failed, { status: response.status }));
        }
        const body = await response.json();
        if (body.status !== section.dataset.status) {
          window.clearInterval(timer);
          await swapIn(section);
        }
      } catch (error) {
        showError(
          section,
          fill(gettext("Could not refresh the analysis: %(error)s. Retrying…"), {
            error: error.message,
          }),
        );
      }
    }, POLL_MS);
  }

  async function rerun(section, buttons) {
    buttons.forEach((button) => (button.disabled = true));
    showError(section, "");
    try {
      const response = await fetch(section.dataset.rerunUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(
          body.detail ||
            fill(gettext("the server answered %(status)s"), { status: response.status }),
        );
      }
      await swapIn(section);
    } catch (error) {
      const failed = gettext("Could not re-run the analysis: %(error)s");
      showError(section, fill(failed, { error: error.message }));
      buttons.forEach((button) => (button.disabled = false));
    }
  }

  function init(section) {
    const buttons = Array.from(section.querySelectorAll(".analysis-rerun"));
    if (section.dataset.rerunUrl) {
      buttons.forEach((button) => button.addEventListener("click", () => rerun(section, buttons)));
    }
    if (UNFINISHED.includes(section.dataset.status)) poll(section);
  }

  const section = document.getElementById("analysis");
  if (section && !section.dataset.bound) {
    section.dataset.bound = "1";
    init(section);
  }
})();
