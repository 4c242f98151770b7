// Players: the <audio data-mp3="key"> elements of the `html` trait, filled with MP3s that the
// kernel sends as binary buffers of custom comm messages (see players.py), so that no audio is
// ever part of the widget's saved state. anywidget ES module, no build step. The kernel displays
// a still of the same HTML (class stemlab-still) just before the widget, for a notebook reopened
// where widgets cannot render; a rendered widget hides it.

const NO_KERNEL_MS = 5000; // no answer to "need-audio" by then: no kernel behind this model

function hideStill(el) {
  requestAnimationFrame(() => {
    const previous = el.closest(".jp-OutputArea-child, .output_area")?.previousElementSibling;
    if (previous?.querySelector(".stemlab-still")) previous.style.display = "none";
  });
}

function render({ model, el }) {
  el.innerHTML = model.get("html");
  hideStill(el);
  const urls = new Map(); // key -> object URL of its MP3
  let heard = false;

  const fill = () => {
    for (const audio of el.querySelectorAll("audio[data-mp3]")) {
      const url = urls.get(audio.dataset.mp3);
      if (url && audio.getAttribute("src") !== url) audio.setAttribute("src", url);
    }
  };
  const noKernel = () => {
    for (const note of el.querySelectorAll("[data-stemlab-note]")) {
      note.textContent = "Kernel not connected: re-run this cell to play.";
    }
  };
  const onMessage = (msg, buffers) => {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "audio" && buffers && buffers.length) {
      heard = true;
      const key = String(msg.key);
      if (urls.has(key)) URL.revokeObjectURL(urls.get(key));
      urls.set(key, URL.createObjectURL(new Blob([buffers[0]], { type: "audio/mpeg" })));
      fill();
    } else if (msg.type === "no-audio") {
      heard = true;
    }
  };

  model.on("msg:custom", onMessage);
  const timer = setTimeout(() => {
    if (!heard) noKernel();
  }, NO_KERNEL_MS);
  try {
    model.send({ type: "need-audio" });
  } catch (err) {
    noKernel();
  }
  return () => {
    clearTimeout(timer);
    model.off("msg:custom", onMessage);
    for (const url of urls.values()) URL.revokeObjectURL(url);
  };
}

export default { render };
