// The part of the widgets' front ends they share: elements, the frame store that fetches frames and overlays
// from Python, and mask and point drawing. Python prepends it to each widget's module (anywidget loads one
// module per widget).

const CACHE_LIMIT = 96;

function el(tag, cls, attrs = {}) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  // JupyterLab swallows keys (arrows, a, b, c, x ...) unless the focused element opts out.
  node.setAttribute("data-lm-suppress-shortcuts", "true");
  return node;
}

function decode(view, type) {
  return createImageBitmap(new Blob([view], { type }));
}

// Frames and overlays fetched from Python: images never change, overlays are invalidated.
class FrameStore {
  constructor(model, onReady) {
    this.model = model;
    this.onReady = onReady;
    this.images = new Map();
    this.overlays = new Map();
    this.pending = new Set();
    this.generation = 0;
  }

  ensure(center, ahead) {
    const last = this.model.get("num_frames") - 1;
    const wanted = [];
    for (let i = Math.max(0, center - 1); i <= Math.min(last, center + ahead); i++) wanted.push(i);
    wanted.sort((a, b) => Math.abs(a - center) - Math.abs(b - center));
    const withImages = wanted.filter((i) => !this.images.has(i) && !this.pending.has(i));
    const overlaysOnly = wanted.filter((i) => this.images.has(i) && !this.overlays.has(i) && !this.pending.has(i));
    for (const [frames, images] of [[withImages, true], [overlaysOnly, false]]) {
      if (!frames.length) continue;
      frames.forEach((i) => this.pending.add(i));
      this.model.send({ type: "request", frames, images });
    }
    this.evict(center);
  }

  async receive(msg, buffers) {
    const generation = this.generation;
    try {
      const image = msg.image === null ? null : decode(buffers[msg.image], "image/jpeg");
      const objects = await Promise.all(
        msg.objects.map(async (o) => ({ ...o, bitmap: o.mask === null ? null : await decode(buffers[o.mask], "image/png") })),
      );
      if (image) this.images.set(msg.idx, await image);
      // An overlay decoded across an invalidation is stale: drop it and let ensure() ask again.
      if (generation === this.generation) this.overlays.set(msg.idx, objects);
    } finally {
      this.pending.delete(msg.idx);
    }
    this.onReady(msg.idx);
  }

  invalidate(frames) {
    this.generation += 1;
    for (const i of frames ?? [...this.overlays.keys()]) this.overlays.delete(i);
  }

  evict(center) {
    if (this.images.size <= CACHE_LIMIT) return;
    const far = [...this.images.keys()].sort((a, b) => Math.abs(b - center) - Math.abs(a - center));
    for (const i of far.slice(0, this.images.size - CACHE_LIMIT)) {
      this.images.get(i).close();
      this.images.delete(i);
      this.overlays.delete(i);
    }
  }
}

// Tint a 1-bit alpha mask with a colour through a scratch canvas, then blend it onto ctx.
function drawMask(ctx, scratch, bitmap, color, alpha) {
  scratch.width = ctx.canvas.width;
  scratch.height = ctx.canvas.height;
  const s = scratch.getContext("2d");
  s.drawImage(bitmap, 0, 0, scratch.width, scratch.height);
  s.globalCompositeOperation = "source-in";
  s.fillStyle = color;
  s.fillRect(0, 0, scratch.width, scratch.height);
  ctx.save();
  ctx.globalAlpha = alpha;
  ctx.drawImage(scratch, 0, 0);
  ctx.restore();
}

function drawPoint(ctx, x, y, color, filled) {
  ctx.beginPath();
  ctx.arc(x, y, 5, 0, 2 * Math.PI);
  ctx.lineWidth = 2;
  ctx.strokeStyle = filled ? "#ffffff" : color;
  ctx.fillStyle = color;
  if (filled) ctx.fill();
  ctx.stroke();
}
