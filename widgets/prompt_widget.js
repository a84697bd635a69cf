// PromptWidget front end: draws frames and overlays on a canvas, turns mouse and keys into
// prompt messages in canvas pixels (Python maps them to video pixels), and fetches frames on demand.

const TOOL_TASKS = { click: ["mask"], box: ["mask", "box"], track_point: ["point"] };
const NEW_TASK = { click: "mask", box: "box", track_point: "point" };
const DRAG_MIN = 4;

function drawClick(ctx, x, y, label, color) {
  ctx.save();
  ctx.beginPath();
  ctx.arc(x, y, 7, 0, 2 * Math.PI);
  ctx.fillStyle = label === 1 ? "#22c55e" : "#ef4444";
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.fill();
  ctx.stroke();
  ctx.strokeStyle = "#ffffff";
  ctx.beginPath();
  ctx.moveTo(x - 4, y);
  ctx.lineTo(x + 4, y);
  if (label === 1) {
    ctx.moveTo(x, y - 4);
    ctx.lineTo(x, y + 4);
  }
  ctx.stroke();
  ctx.restore();
}

function drawCross(ctx, x, y, color) {
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(x - 9, y);
  ctx.lineTo(x + 9, y);
  ctx.moveTo(x, y - 9);
  ctx.lineTo(x, y + 9);
  ctx.stroke();
  ctx.restore();
}

function render({ model, el: host }) {
  const root = el("div", "s2p-prompt", { tabindex: "0" });
  const toolbar = el("div", "s2p-toolbar");
  const tools = {};
  for (const [tool, label, key] of [["click", "Click", "c"], ["box", "Box", "b"], ["track_point", "Track point", "t"]]) {
    tools[tool] = el("button", `s2p-tool s2p-tool-${tool}`, { title: `${label} (${key})` });
    tools[tool].textContent = label;
    tools[tool].addEventListener("click", () => setTool(tool));
    toolbar.append(tools[tool]);
  }
  const actions = {};
  for (const [name, label, title] of [
    ["undo", "Undo", "Undo (u, Ctrl+Z)"], ["clear", "Clear", "Clear all prompts"], ["propagate", "Propagate", "Propagate (p)"],
  ]) {
    actions[name] = el("button", `s2p-action s2p-${name}`, { title });
    actions[name].textContent = label;
    actions[name].addEventListener("click", () => act(name));
    toolbar.append(actions[name]);
  }
  const objectBar = el("div", "s2p-objects");
  const stage = el("div", "s2p-stage");
  const canvas = el("canvas", "s2p-canvas");
  stage.append(canvas);
  const scrub = el("div", "s2p-scrub");
  const prev = el("button", "s2p-prev", { title: "Previous frame (←)" });
  prev.textContent = "◀";
  const slider = el("input", "s2p-slider", { type: "range", min: "0", step: "1" });
  const next = el("button", "s2p-next", { title: "Next frame (→)" });
  next.textContent = "▶";
  const counter = el("span", "s2p-counter");
  scrub.append(prev, slider, next, counter);
  const status = el("div", "s2p-status");
  root.append(toolbar, objectBar, stage, scrub, status);
  host.append(root);

  const ctx = canvas.getContext("2d");
  const scratch = document.createElement("canvas");
  const store = new FrameStore(model, (idx) => idx === model.get("frame_idx") && draw());
  let drag = null;

  const toCanvas = (e) => [e.offsetX * canvas.width / canvas.clientWidth, e.offsetY * canvas.height / canvas.clientHeight];
  const colorOf = (id) => (model.get("objects").find((o) => o.id === id) || { color: "#ffffff" }).color;
  const current = () => model.get("objects").find((o) => o.id === model.get("obj_id"));

  function setFrame(idx) {
    const clamped = Math.max(0, Math.min(model.get("num_frames") - 1, idx));
    if (clamped === model.get("frame_idx")) return;
    model.set("frame_idx", clamped);
    model.save_changes();
  }

  function setTool(tool) {
    model.set("tool", tool);
    model.save_changes();
  }

  function selectObject(id) {
    model.set("obj_id", id);
    const obj = current();
    if (obj && !TOOL_TASKS[model.get("tool")].includes(obj.task)) {
      model.set("tool", Object.keys(TOOL_TASKS).find((t) => TOOL_TASKS[t].includes(obj.task)));
    }
    model.save_changes();
  }

  function act(name, extra = {}) {
    status.textContent = `${name} …`;
    model.send({ type: name, ...extra });
  }

  function prompt(message) {
    if (!current()) {
      act("new_object", { task: NEW_TASK[model.get("tool")] });
    }
    act(message.type, message);
  }

  function syncControls() {
    const n = model.get("num_frames");
    const idx = model.get("frame_idx");
    // Assigning a canvas size clears it, so only on a real change.
    if (canvas.width !== model.get("width")) canvas.width = model.get("width");
    if (canvas.height !== model.get("height")) canvas.height = model.get("height");
    slider.max = String(n - 1);
    slider.value = String(idx);
    counter.textContent = `${idx + 1} / ${n}`;
    const obj = current();
    for (const [tool, button] of Object.entries(tools)) {
      button.classList.toggle("s2p-active", model.get("tool") === tool);
      button.disabled = !!obj && !TOOL_TASKS[tool].includes(obj.task);
    }
    root.classList.toggle("s2p-busy", model.get("busy"));
    status.textContent = model.get("status");
  }

  function syncObjects() {
    objectBar.replaceChildren();
    model.get("objects").forEach((obj, n) => {
      const chip = el("button", "s2p-object", { "data-obj-id": String(obj.id), title: `Select (${n + 1})` });
      chip.classList.toggle("s2p-active", obj.id === model.get("obj_id"));
      const swatch = el("span", "s2p-swatch");
      swatch.style.background = obj.color;
      chip.append(swatch, `${obj.id} · ${obj.task}`);
      chip.addEventListener("click", () => selectObject(obj.id));
      objectBar.append(chip);
    });
    for (const task of ["mask", "box", "point"]) {
      const add = el("button", `s2p-new s2p-new-${task}`, { title: `New ${task} object (n)` });
      add.textContent = `+ ${task}`;
      add.addEventListener("click", () => act("new_object", { task }));
      objectBar.append(add);
    }
  }

  function draw() {
    const idx = model.get("frame_idx");
    const image = store.images.get(idx);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!image) {
      ctx.fillStyle = "#333";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      return;
    }
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    const objects = store.overlays.get(idx) || [];
    const alpha = model.get("alpha");
    let drawn = 0;
    for (const o of objects) {
      const color = colorOf(o.id);
      if (o.bitmap) drawMask(ctx, scratch, o.bitmap, color, alpha);
      if (o.box) {
        ctx.save();
        ctx.strokeStyle = color;
        ctx.lineWidth = 2;
        ctx.strokeRect(o.box[0], o.box[1], o.box[2] - o.box[0], o.box[3] - o.box[1]);
        ctx.restore();
      }
      if (o.point) drawPoint(ctx, o.point[0], o.point[1], color, o.visible);
      if (o.bitmap || o.box || o.point) drawn += 1;
    }
    const sx = canvas.width / model.get("video_width");
    const sy = canvas.height / model.get("video_height");
    const here = model.get("prompts").filter((p) => p.frame_idx === idx);
    for (const p of here) {
      const color = colorOf(p.obj_id);
      if (p.kind === "click") drawClick(ctx, p.xy[0] * sx, p.xy[1] * sy, p.label, color);
      if (p.kind === "track_point") drawCross(ctx, p.xy[0] * sx, p.xy[1] * sy, color);
      if (p.kind === "box") {
        ctx.save();
        ctx.setLineDash([6, 4]);
        ctx.strokeStyle = color;
        ctx.lineWidth = 2;
        const [x0, y0, x1, y1] = p.box_xyxy;
        ctx.strokeRect(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
        ctx.restore();
      }
    }
    if (drag && drag.moved) {
      ctx.save();
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = "#ffffff";
      ctx.strokeRect(drag.x0, drag.y0, drag.x1 - drag.x0, drag.y1 - drag.y0);
      ctx.restore();
    }
    // Stable hooks for tests and for users' own scripts: what is on screen right now.
    canvas.dataset.renderedFrame = String(idx);
    canvas.dataset.overlayObjects = String(drawn);
    canvas.dataset.promptMarkers = String(here.length);
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    root.focus({ preventScroll: true });
    const [x, y] = toCanvas(e);
    drag = { x0: x, y0: y, x1: x, y1: y, moved: false };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    [drag.x1, drag.y1] = toCanvas(e);
    drag.moved ||= Math.hypot(drag.x1 - drag.x0, drag.y1 - drag.y0) >= DRAG_MIN;
    if (model.get("tool") === "box") draw();
  });
  canvas.addEventListener("pointerup", (e) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    [d.x1, d.y1] = toCanvas(e);
    const tool = model.get("tool");
    if (tool === "box" && d.moved) prompt({ type: "box", box: [d.x0, d.y0, d.x1, d.y1] });
    else if (tool === "click" && !d.moved) prompt({ type: "click", x: d.x1, y: d.y1, label: e.shiftKey ? 0 : 1 });
    else if (tool === "track_point" && !d.moved) prompt({ type: "track_point", x: d.x1, y: d.y1 });
    draw();
  });
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());

  slider.addEventListener("input", () => setFrame(Number(slider.value)));
  prev.addEventListener("click", () => setFrame(model.get("frame_idx") - 1));
  next.addEventListener("click", () => setFrame(model.get("frame_idx") + 1));

  root.addEventListener("keydown", (e) => {
    const onSlider = e.target === slider && e.key.startsWith("Arrow");
    const idx = model.get("frame_idx");
    const keys = {
      ArrowLeft: () => setFrame(idx - 1), ArrowRight: () => setFrame(idx + 1),
      ",": () => setFrame(idx - 1), ".": () => setFrame(idx + 1),
      c: () => setTool("click"), b: () => setTool("box"), t: () => setTool("track_point"),
      n: () => act("new_object", { task: NEW_TASK[model.get("tool")] }),
      u: () => act("undo"), p: () => act("propagate"),
      Escape: () => { drag = null; draw(); },
    };
    let handler = keys[e.key];
    if ((e.ctrlKey || e.metaKey) && e.key === "z") handler = keys.u;
    else if (e.ctrlKey || e.metaKey || e.altKey) handler = undefined;
    if (/^[1-9]$/.test(e.key)) {
      const obj = model.get("objects")[Number(e.key) - 1];
      if (obj) handler = () => selectObject(obj.id);
    }
    e.stopPropagation();
    if (!handler || onSlider) return;
    e.preventDefault();
    handler();
  });

  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "frame") store.receive(msg, buffers);
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
  for (const name of ["tool", "busy", "status", "num_frames", "width", "height"]) model.on(`change:${name}`, syncControls);
  model.on("change:objects", () => { syncObjects(); syncControls(); draw(); });
  model.on("change:obj_id", () => { syncObjects(); syncControls(); });
  model.on("change:prompts", draw);
  model.on("change:alpha", draw);

  syncObjects();
  onFrame();
  return () => {
    for (const bitmap of store.images.values()) bitmap.close();
  };
}

export default { render };
