// The page around the app: the <html lang>, Streamlit's own English strings in the chosen language,
// a visible message when an uploader refuses a file, and pasting an image into the marked uploader.
// Installed once per page; each rerun only hands over the current language's words.
export default function (component) {
  const page = window.cvunetPage || (window.cvunetPage = { words: null });
  page.words = component.data;
  document.documentElement.lang = page.words.lang;

  const translate = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.nodeValue.trim();
      for (const [pattern, replacement] of page.words.rules) {
        const match = new RegExp(pattern).exec(text);
        if (match) {
          const replaced = text.replace(new RegExp(pattern), replacement);
          if (replaced !== text) node.nodeValue = replaced;
          break;
        }
      }
    }
  };

  const flagRefusals = () => {
    for (const uploader of document.querySelectorAll("[data-testid='stFileUploader']")) {
      const refused = uploader.querySelector("[data-testid='stFileChipIconError']");
      let note = uploader.querySelector(".cvunet-upload-refused");
      if (refused && !note) {
        note = document.createElement("div");
        note.className = "cvunet-upload-refused";
        note.setAttribute("role", "alert");
        uploader.appendChild(note);
      }
      if (note) {
        if (refused) note.textContent = page.words.refused;
        else note.remove();
      }
    }
  };

  const refresh = () => {
    for (const selector of page.words.scopes) {
      for (const element of document.querySelectorAll(selector)) translate(element);
    }
    flagRefusals();
  };

  if (!page.observer) {
    page.observer = new MutationObserver(() => {
      page.observer.disconnect();
      refresh();
      page.observer.observe(document.body, { childList: true, subtree: true, characterData: true });
    });
    page.observer.observe(document.body, { childList: true, subtree: true, characterData: true });
    document.addEventListener("paste", (event) => {
      const input = document.querySelector(".st-key-paste-target input[type='file']");
      const image = [...(event.clipboardData?.files || [])].find((file) => file.type.startsWith("image/"));
      if (!input || !image) return;
      event.preventDefault();
      const suffix = image.type.split("/")[1].replace("jpeg", "jpg");
      const stamp = new Date().toTimeString().slice(0, 8).replaceAll(":", "");
      const named = new File([image], `${page.words.pasted}-${stamp}.${suffix}`, { type: image.type });
      const files = new DataTransfer();
      files.items.add(named);
      input.files = files.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }
  refresh();
}
