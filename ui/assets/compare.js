// Before/after: the result drawn over the original, revealed up to a draggable handle, on a chosen backdrop.
// Everything is inline (no script, style or font from elsewhere): the page works with no internet.
export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector(".cvunet-compare");
  if (!root) {
    root = document.createElement("div");
    root.className = "cvunet-compare";
    root.innerHTML = `
      <img class="cvunet-before" alt="">
      <div class="cvunet-after"><img alt=""></div>
      <div class="cvunet-divider"></div>
      <span class="cvunet-label cvunet-label-before"></span>
      <span class="cvunet-label cvunet-label-after"></span>
      <input class="cvunet-handle" type="range" min="0" max="100" step="0.5" value="50">`;
    parentElement.appendChild(root);
    const handle = root.querySelector(".cvunet-handle");
    handle.addEventListener("input", () => root.style.setProperty("--cvunet-split", `${handle.value}%`));
  }
  root.style.setProperty("--cvunet-split", `${root.querySelector(".cvunet-handle").value}%`);
  // Exactly the picture's shape, at most half the screen high: the backdrop never shows beside the picture.
  root.style.aspectRatio = `${data.width} / ${data.height}`;
  root.style.width = `min(100%, calc(52vh * ${data.width} / ${data.height}))`;
  root.querySelector(".cvunet-before").src = data.before;
  root.querySelector(".cvunet-after img").src = data.after;
  root.querySelector(".cvunet-after").style.background = data.backdrop;
  root.querySelector(".cvunet-label-before").textContent = data.labels.before;
  root.querySelector(".cvunet-label-after").textContent = data.labels.after;
  root.querySelector(".cvunet-handle").setAttribute("aria-label", data.labels.handle);
}
