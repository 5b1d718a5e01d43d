// "Copy link" buttons: copy the text of the element named by data-copy-target.
(() => {
  "use strict";

  async function copy(button) {
    const target = document.getElementById(button.dataset.copyTarget);
    if (!target) return;
    const text = target.textContent.trim();
    const label = button.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = gettext("Copied");
    } catch {
      // No clipboard permission (plain http, an old browser): select it for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents(target);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = gettext("Selected: press Ctrl+C");
    }
    setTimeout(() => {
      button.textContent = label;
    }, 2000);
  }

  for (const button of document.querySelectorAll("button[data-copy-target]")) {
    button.addEventListener("click", () => copy(button));
  }
})();
