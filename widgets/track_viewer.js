// TrackViewer front end: scrubs and plays a track, fetching frames and masks on demand with a
// prefetch window ahead of the play head; boxes and point trails arrive once as numbers.

// Polyline through the last `length` positions up to frame idx, broken where the point is absent.
function drawTrail(ctx, points, idx, length, color) {
  if (length < 2) return;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.globalAlpha = 0.8;
  ctx.beginPath();
  let open = false;
  for (let t = Math.max(0, idx - length + 1); t <= idx; t++) {
    const p = points[t];
    if (!p) { open = false; continue; }
    if (open) ctx.lineTo(p[0], p[1]);
    else ctx.moveTo(p[0], p[1]);
    open = true;
  }
  ctx.stroke();
  ctx.restore();
}

function render({ model, el: host }) {
  const root = el("div", "s2v-viewer", { tabindex: "0" });
  const stage = el("div", "s2v-stage");
  const canvas = el("canvas", "s2v-canvas");
  stage.append(canvas);

  const transport = el("div", "s2v-transport");
  const play = el("button", "s2v-play", { title: "Play / pause (space)" });
  const prev = el("button", "s2v-prev", { title: "Previous frame (←)" });
  prev.textContent = "◀";
  const slider = el("input", "s2v-slider", { type: "range", min: "0", step: "1" });
  const next = el("button", "s2v-next", { title: "Next frame (→)" });
  next.textContent = "▶";
  const counter = el("span", "s2v-counter");
  const fps = el("input", "s2v-fps", { type: "number", min: "1", max: "60", step: "1", title: "Frames per second" });
  const fpsLabel = el("label", "s2v-label");
  fpsLabel.append(fps, " fps");
  transport.append(play, prev, slider, next, counter, fpsLabel);

  const layers = el("div", "s2v-layers");
  const toggles = {};
  for (const [name, label] of [["show_masks", "masks"], ["show_boxes", "boxes"], ["show_points", "points"]]) {
    const box = el("input", `s2v-toggle s2v-${name}`, { type: "checkbox" });
    box.addEventListener("change", () => { model.set(name, box.checked); model.save_changes(); });
    const wrap = el("label", "s2v-label");
    wrap.append(box, ` ${label}`);
    layers.append(wrap);
    toggles[name] = box;
  }
  const trail = el("input", "s2v-trail", { type: "number", min: "0", max: "300", step: "1", title: "Trail length (frames)" });
  const trailLabel = el("label", "s2v-label");
  trailLabel.append("trail ", trail);
  const alpha = el("input", "s2v-alpha", { type: "range", min: "0", max: "1", step: "0.05", title: "Mask opacity" });
  const alphaLabel = el("label", "s2v-label");
  alphaLabel.append("opacity ", alpha);
  layers.append(trailLabel, alphaLabel);
  for (const fmt of ["png", "gif", "mp4"]) {
    const button = el("button", `s2v-export s2v-export-${fmt}`, { title: fmt === "png" ? "Export this frame" : "Export the whole track" });
    button.textContent = fmt.toUpperCase();
    button.addEventListener("click", () => { status.textContent = `exporting ${fmt} …`; model.send({ type: "export", format: fmt }); });
    layers.append(button);
  }
  const objectBar = el("div", "s2v-objects");
  const status = el("div", "s2v-status");
  root.append(stage, transport, layers, objectBar, status);
  host.append(root);

  const ctx = canvas.getContext("2d");
  const scratch = document.createElement("canvas");
  const store = new FrameStore(model, (idx) => idx === model.get("frame_idx") && draw());
  let timer = null;

  function setFrame(idx) {
    const n = model.get("num_frames");
    const clamped = Math.max(0, Math.min(n - 1, idx));
    if (clamped === model.get("frame_idx")) return;
    model.set("frame_idx", clamped);
    model.save_changes();
  }

  function setPlaying(on) {
    model.set("playing", on);
    model.save_changes();
  }

  // Advance only when the next frame has arrived, so slow links slow playback instead of skipping.
  function tick() {
    const idx = model.get("frame_idx");
    const n = model.get("num_frames");
    const nextIdx = idx + 1 >= n ? 0 : idx + 1;
    store.ensure(nextIdx, model.get("prefetch"));
    if (store.images.has(nextIdx) && store.overlays.has(nextIdx)) setFrame(nextIdx);
  }

  function syncPlayback() {
    clearInterval(timer);
    timer = null;
    const on = model.get("playing");
    play.textContent = on ? "❚❚" : "►";
    play.classList.toggle("s2v-active", on);
    if (on) timer = setInterval(tick, 1000 / Math.max(1, model.get("fps")));
  }

  function syncControls() {
    const n = model.get("num_frames");
    const idx = model.get("frame_idx");
    if (canvas.width !== model.get("width")) canvas.width = model.get("width");
    if (canvas.height !== model.get("height")) canvas.height = model.get("height");
    slider.max = String(n - 1);
    slider.value = String(idx);
    counter.textContent = `${idx + 1} / ${n}`;
    fps.value = String(model.get("fps"));
    trail.value = String(model.get("trail"));
    alpha.value = String(model.get("alpha"));
    for (const [name, box] of Object.entries(toggles)) box.checked = model.get(name);
    status.textContent = model.get("status");
  }

  function syncObjects() {
    objectBar.replaceChildren();
    const hidden = new Set(model.get("hidden"));
    for (const obj of model.get("objects")) {
      const wrap = el("label", "s2v-object", { "data-obj-id": String(obj.id) });
      const box = el("input", "s2v-object-toggle", { type: "checkbox" });
      box.checked = !hidden.has(obj.id);
      box.addEventListener("change", () => {
        const now = new Set(model.get("hidden"));
        if (box.checked) now.delete(obj.id);
        else now.add(obj.id);
        model.set("hidden", [...now].sort((a, b) => a - b));
        model.save_changes();
      });
      const swatch = el("span", "s2v-swatch");
      swatch.style.background = obj.color;
      wrap.append(box, swatch, `${obj.id} · ${obj.task}`);
      objectBar.append(wrap);
    }
  }

  function draw() {
    const idx = model.get("frame_idx");
    const image = store.images.get(idx);
    if (!image) return;
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    const hidden = new Set(model.get("hidden"));
    const colors = new Map(model.get("objects").map((o) => [o.id, o.color]));
    const tracks = model.get("tracks");
    const objects = (store.overlays.get(idx) || []).filter((o) => !hidden.has(o.id));
    let drawn = 0;
    for (const o of objects) {
      const color = colors.get(o.id) || "#ffffff";
      const layers = [
        model.get("show_masks") && o.bitmap, model.get("show_boxes") && o.box, model.get("show_points") && o.point,
      ];
      if (layers[0]) drawMask(ctx, scratch, o.bitmap, color, model.get("alpha"));
      if (layers[1]) {
        ctx.save();
        ctx.strokeStyle = color;
        ctx.lineWidth = 2;
        ctx.strokeRect(o.box[0], o.box[1], o.box[2] - o.box[0], o.box[3] - o.box[1]);
        ctx.restore();
      }
      if (model.get("show_points") && tracks[o.id]) drawTrail(ctx, tracks[o.id].points, idx, model.get("trail"), color);
      if (layers[2]) drawPoint(ctx, o.point[0], o.point[1], color, o.visible);
      if (layers.some(Boolean)) drawn += 1;
    }
    canvas.dataset.renderedFrame = String(idx);
    canvas.dataset.overlayObjects = String(drawn);
  }

  function download(msg, buffers) {
    const url = URL.createObjectURL(new Blob([buffers[0]], { type: msg.mime }));
    const a = document.createElement("a");
    a.href = url;
    a.download = msg.name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  play.addEventListener("click", () => setPlaying(!model.get("playing")));
  slider.addEventListener("input", () => setFrame(Number(slider.value)));
  prev.addEventListener("click", () => setFrame(model.get("frame_idx") - 1));
  next.addEventListener("click", () => setFrame(model.get("frame_idx") + 1));
  fps.addEventListener("change", () => { model.set("fps", Math.max(1, Number(fps.value) || 1)); model.save_changes(); });
  trail.addEventListener("change", () => { model.set("trail", Math.max(0, Math.round(Number(trail.value) || 0))); model.save_changes(); });
  alpha.addEventListener("input", () => { model.set("alpha", Number(alpha.value)); model.save_changes(); });
  canvas.addEventListener("pointerdown", () => root.focus({ preventScroll: true }));

  root.addEventListener("keydown", (e) => {
    const idx = model.get("frame_idx");
    const native = e.target instanceof HTMLInputElement && e.target.type !== "checkbox";
    const flip = (name) => () => { model.set(name, !model.get(name)); model.save_changes(); };
    const keys = {
      " ": () => setPlaying(!model.get("playing")),
      ArrowLeft: () => setFrame(idx - 1), ArrowRight: () => setFrame(idx + 1),
      ",": () => setFrame(idx - 1), ".": () => setFrame(idx + 1),
      Home: () => setFrame(0), End: () => setFrame(model.get("num_frames") - 1),
      m: flip("show_masks"), b: flip("show_boxes"), p: flip("show_points"),
    };
    e.stopPropagation();
    const handler = e.ctrlKey || e.metaKey || e.altKey ? undefined : keys[e.key];
    if (!handler || native) return;
    e.preventDefault();
    handler();
  });

  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "frame") store.receive(msg, buffers);
    if (msg.type === "download") download(msg, buffers);
    if (msg.type === "invalidate") {
      store.invalidate(msg.frames);
      store.ensure(model.get("frame_idx"), model.get("prefetch"));
      draw();
    }
  });
  const onFrame = () => {
    syncControls();
    store.ensure(model.get("frame_idx"), model.get("prefetch"));
    draw();
  };
  model.on("change:frame_idx", onFrame);
  for (const name of ["status", "fps", "trail", "num_frames", "width", "height"]) model.on(`change:${name}`, syncControls);
  for (const name of ["show_masks", "show_boxes", "show_points", "alpha", "trail", "tracks"]) model.on(`change:${name}`, () => { syncControls(); draw(); });
  model.on("change:objects", () => { syncObjects(); draw(); });
  model.on("change:hidden", () => { syncObjects(); draw(); });
  model.on("change:playing", syncPlayback);
  model.on("change:fps", syncPlayback);

  syncObjects();
  syncPlayback();
  onFrame();
  return () => {
    clearInterval(timer);
    for (const bitmap of store.images.values()) bitmap.close();
  };
}

export default { render };
