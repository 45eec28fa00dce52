// Streamhut's behaviour that needs no Rust: the video player (hls.js, shipped with the
// site, loaded only where a player is), card hover previews, and share buttons.
//
// The pages are rendered on the server and hydrated by the wasm app; this script waits for
// hydration (the app dispatches `streamhut:hydrated`) before touching the DOM, then watches
// for players and cards that client-side navigation adds. Without JavaScript, the video
// element keeps its native controls.
(() => {
  "use strict";

  // hls.js sits next to this script, in the same content-addressed directory.
  const HLS_SRC = new URL("hls.light.min.js", document.currentScript?.src ?? window.location.href).href;
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const store = {
    get(key, fallback) {
      try {
        const value = window.localStorage.getItem(`streamhut.${key}`);
        return value === null ? fallback : JSON.parse(value);
      } catch {
        return fallback;
      }
    },
    set(key, value) {
      try {
        window.localStorage.setItem(`streamhut.${key}`, JSON.stringify(value));
      } catch {
        // storage may be off; preferences then last for the page
      }
    },
  };

  // --- WebVTT previews (cards and seek bar) -------------------------------------------

  const vttCache = new Map();

  /** Cues of a sprite/storyboard WebVTT: [{start, end, url, x, y, w, h}]. */
  function parseVtt(text, base) {
    const cues = [];
    const blocks = text.replace(/\r/g, "").split(/\n\n+/);
    const time = (t) => {
      const parts = t.trim().split(":").map(Number);
      return parts.reduce((total, part) => total * 60 + part, 0);
    };
    for (const block of blocks) {
      const lines = block.split("\n").filter(Boolean);
      const timing = lines.findIndex((line) => line.includes("-->"));
      if (timing < 0 || !lines[timing + 1]) continue;
      const [start, end] = lines[timing].split("-->");
      const [url, fragment] = lines[timing + 1].split("#xywh=");
      const [x, y, w, h] = (fragment ?? "0,0,0,0").split(",").map(Number);
      cues.push({ start: time(start), end: time(end), url: new URL(url, base).href, x, y, w, h });
    }
    return cues;
  }

  /** The cues at `url`, fetched once; `null` while the previews are still being made. */
  async function loadVtt(relative) {
    const url = new URL(relative, window.location.href).href;
    const cached = vttCache.get(url);
    if (cached && (cached.cues || Date.now() - cached.at < 5000)) return cached.cues ?? (await cached.pending);
    const pending = fetch(url, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : null))
      .then((text) => (text ? parseVtt(text, url) : null))
      .catch(() => null);
    vttCache.set(url, { pending, at: Date.now() });
    const cues = await pending;
    if (cues) vttCache.set(url, { cues, at: Date.now() });
    return cues;
  }

  function showCue(element, cue) {
    element.style.backgroundImage = `url("${cue.url}")`;
    element.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    element.style.width = `${cue.w}px`;
    element.style.height = `${cue.h}px`;
  }

  // --- card hover previews -------------------------------------------------------------

  // A thumbnail still being made answers 503 (with Retry-After), and an <img> never asks
  // again by itself: a poster that failed is asked for again a few times, each wait
  // twice the last (1.5 s to 48 s).
  function retryPoster(img) {
    let tries = 0;
    const again = () => {
      if (tries >= 6) return;
      tries += 1;
      window.setTimeout(() => {
        const src = img.getAttribute("src");
        if (!src) return;
        img.removeAttribute("src");
        img.setAttribute("src", src);
      }, 1500 * 2 ** (tries - 1));
    };
    img.addEventListener("error", again);
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) again();
  }

  function setUpCard(card) {
    card.dataset.ready = "1";
    const img = card.querySelector(".video-card__poster img");
    if (img) retryPoster(img);
    const poster = card.querySelector(".video-card__poster");
    const vtt = card.dataset.spriteVtt;
    if (!poster || !vtt) return;
    const frame = document.createElement("span");
    frame.className = "video-card__preview";
    frame.setAttribute("aria-hidden", "true");
    poster.append(frame);
    let timer = 0;
    let index = 0;
    const stop = () => {
      window.clearInterval(timer);
      timer = 0;
      card.classList.remove("is-previewing");
    };
    const start = async () => {
      if (timer) return;
      const cues = await loadVtt(vtt);
      if (!cues || cues.length === 0 || !card.matches(":hover, :focus-within")) return;
      const scale = poster.clientWidth / cues[0].w;
      frame.style.transform = `scale(${scale})`;
      const step = () => {
        showCue(frame, cues[index % cues.length]);
        card.dataset.previewFrame = String(index % cues.length);
        index += 1;
      };
      step();
      card.classList.add("is-previewing");
      if (!reducedMotion.matches) timer = window.setInterval(step, 800);
      else timer = -1;
    };
    card.addEventListener("pointerenter", start);
    card.addEventListener("focusin", start);
    card.addEventListener("pointerleave", stop);
    card.addEventListener("focusout", (event) => {
      if (!card.contains(event.relatedTarget)) stop();
    });
  }

  // --- share buttons -------------------------------------------------------------------

  function announce(message) {
    let region = document.getElementById("announcer");
    if (!region) {
      region = document.createElement("div");
      region.id = "announcer";
      region.className = "visually-hidden";
      region.setAttribute("role", "status");
      region.setAttribute("aria-live", "polite");
      document.body.append(region);
    }
    region.textContent = "";
    window.setTimeout(() => (region.textContent = message), 30);
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest?.("[data-share]");
    if (!button) return;
    event.preventDefault();
    let url = button.dataset.share;
    const withTime = document.getElementById(button.dataset.shareTime ?? "");
    const video = document.querySelector(".player video");
    if (withTime?.checked && video && video.currentTime >= 1) {
      const shared = new URL(url);
      shared.searchParams.set("t", String(Math.floor(video.currentTime)));
      url = shared.href;
    }
    try {
      await navigator.clipboard.writeText(url);
      button.dataset.copied = "1";
      announce("Link copied to the clipboard");
      window.setTimeout(() => delete button.dataset.copied, 2000);
    } catch {
      window.prompt("Copy this link:", url);
    }
  });

  // --- the player ------------------------------------------------------------------------

  let hlsLoading = null;
  function loadHls() {
    if (window.Hls) return Promise.resolve(window.Hls);
    hlsLoading ??= new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = HLS_SRC;
      script.onload = () => resolve(window.Hls);
      script.onerror = () => reject(new Error("the player library did not load"));
      document.head.append(script);
    });
    return hlsLoading;
  }

  const clock = (seconds) => {
    if (!Number.isFinite(seconds)) return "0:00";
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor(s / 60) % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
  };

  const SHORTCUTS = [
    ["Space or K", "Play or pause"],
    ["J / L", "Back or forward 10 seconds"],
    ["← / →", "Back or forward 5 seconds"],
    ["↑ / ↓", "Volume up or down"],
    ["M", "Mute or unmute"],
    ["F", "Full screen"],
    ["T", "Theater mode"],
    ["0 – 9", "Jump to 0 % – 90 %"],
    ["?", "Show these shortcuts"],
  ];

  const ICONS = {
    play: "M8 5v14l11-7z",
    pause: "M7 5h4v14H7zM13 5h4v14h-4z",
    volume: "M4 9v6h4l5 4V5L8 9zM16 8.5a4.5 4.5 0 0 1 0 7M18.5 6a8 8 0 0 1 0 12",
    muted: "M4 9v6h4l5 4V5L8 9zM16 9l5 6M21 9l-5 6",
    theater: "M3 6h18v12H3z",
    fullscreen: "M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5",
    help: "M9.5 9a2.5 2.5 0 1 1 3.5 2.3c-.7.3-1 1-1 1.7v.5M12 17v.5",
  };

  /** A range input from 0 to `max`. */
  function slider(className, max, step, label) {
    const input = document.createElement("input");
    input.type = "range";
    input.className = className;
    input.min = "0";
    input.max = max;
    input.step = step;
    input.value = "0";
    input.setAttribute("aria-label", label);
    return input;
  }

  function button(name, label) {
    const element = document.createElement("button");
    element.type = "button";
    element.className = `player__button player__button--${name}`;
    element.setAttribute("aria-label", label);
    element.title = label;
    element.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true" width="24" height="24"><path d="${ICONS[name]}"/></svg>`;
    return element;
  }

  function setIcon(element, name) {
    element.querySelector("path")?.setAttribute("d", ICONS[name]);
  }

  function setUpPlayer(root) {
    root.dataset.ready = "1";
    const video = root.querySelector("video");
    if (!video) return;
    const src = root.dataset.src;
    const start = Number(root.dataset.start ?? 0) || 0;
    video.controls = false;
    root.classList.add("player--custom");

    const overlay = document.createElement("div");
    overlay.className = "player__overlay";
    overlay.setAttribute("role", "alert");
    overlay.hidden = true;

    const bigPlay = button("play", "Play");
    bigPlay.classList.add("player__big-play");

    const chrome = document.createElement("div");
    chrome.className = "player__controls";
    const play = button("play", "Play (k)");
    const seek = slider("player__seek", "0", "0.1", "Seek");
    const time = document.createElement("span");
    time.className = "player__time";
    time.setAttribute("aria-live", "off");
    time.textContent = "0:00 / 0:00";
    const mute = button("volume", "Mute (m)");
    const volume = slider("player__volume", "1", "0.05", "Volume");
    const theater = button("theater", "Theater mode (t)");
    const full = button("fullscreen", "Full screen (f)");
    const help = button("help", "Keyboard shortcuts (?)");
    const preview = document.createElement("div");
    preview.className = "player__preview";
    preview.hidden = true;
    const previewFrame = document.createElement("div");
    previewFrame.className = "player__preview-frame";
    const previewTime = document.createElement("span");
    previewTime.className = "player__preview-time";
    preview.append(previewFrame, previewTime);
    const seekWrap = document.createElement("div");
    seekWrap.className = "player__seek-wrap";
    seekWrap.append(seek, preview);
    const spacer = document.createElement("span");
    spacer.className = "player__spacer";
    chrome.append(play, seekWrap, time, mute, volume, spacer, help, theater, full);

    const dialog = document.createElement("div");
    dialog.className = "player__help";
    dialog.hidden = true;
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-label", "Keyboard shortcuts");
    dialog.innerHTML =
      `<h2 class="player__help-title">Keyboard shortcuts</h2><dl>` +
      SHORTCUTS.map(([key, what]) => `<dt><kbd>${key}</kbd></dt><dd>${what}</dd>`).join("") +
      `</dl><button type="button" class="player__help-close">Close</button>`;
    root.append(overlay, bigPlay, chrome, dialog);

    // Preferences.
    video.volume = Math.min(1, Math.max(0, Number(store.get("volume", 1)) || 0));
    video.muted = Boolean(store.get("muted", false));
    volume.value = String(video.volume);
    if (store.get("theater", false)) document.documentElement.dataset.theater = "1";

    const fail = (message) => {
      overlay.hidden = false;
      overlay.innerHTML = "";
      const text = document.createElement("p");
      text.textContent = message;
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "button";
      retry.textContent = "Try again";
      retry.addEventListener("click", () => window.location.reload());
      overlay.append(text, retry);
      root.classList.add("player--failed");
    };

    // The stream.
    let hls = null;
    const native = video.canPlayType("application/vnd.apple.mpegurl");
    const attach = async () => {
      try {
        const Hls = await loadHls();
        if (Hls?.isSupported()) {
          hls = new Hls({ startPosition: start > 0 ? start : -1, enableWorker: false, capLevelToPlayerSize: true });
          let recovered = false;
          hls.on(Hls.Events.ERROR, (_, data) => {
            if (!data.fatal) return;
            if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
              recovered = true;
              hls.recoverMediaError();
            } else {
              hls.destroy();
              fail(
                data.type === Hls.ErrorTypes.NETWORK_ERROR
                  ? "This video can’t be loaded right now. Check your connection, or try again in a moment."
                  : "This video can’t be played in this browser.",
              );
            }
          });
          hls.loadSource(src);
          hls.attachMedia(video);
          return;
        }
      } catch {
        if (!native) {
          fail("The player could not start. Reload the page to try again.");
          return;
        }
      }
      if (native) {
        video.src = src;
        if (start > 0) video.addEventListener("loadedmetadata", () => (video.currentTime = start), { once: true });
      } else {
        fail("This browser cannot play HLS video.");
      }
    };
    attach();
    video.addEventListener("error", () => {
      if (!hls) fail("This video can’t be played right now.");
    });

    // State to controls.
    const sync = () => {
      const paused = video.paused;
      setIcon(play, paused ? "play" : "pause");
      play.setAttribute("aria-label", paused ? "Play (k)" : "Pause (k)");
      bigPlay.hidden = !paused || root.classList.contains("player--failed");
      root.classList.toggle("is-playing", !paused);
    };
    const progress = () => {
      const duration = Number.isFinite(video.duration) ? video.duration : 0;
      seek.max = String(duration);
      if (!seek.matches(":active")) seek.value = String(video.currentTime);
      seek.setAttribute("aria-valuetext", `${clock(video.currentTime)} of ${clock(duration)}`);
      time.textContent = `${clock(video.currentTime)} / ${clock(duration)}`;
    };
    const sound = () => {
      setIcon(mute, video.muted || video.volume === 0 ? "muted" : "volume");
      mute.setAttribute("aria-label", video.muted ? "Unmute (m)" : "Mute (m)");
      volume.value = String(video.muted ? 0 : video.volume);
      store.set("volume", video.volume);
      store.set("muted", video.muted);
    };
    for (const name of ["play", "pause", "ended"]) video.addEventListener(name, sync);
    for (const name of ["timeupdate", "durationchange", "loadedmetadata", "seeked"]) video.addEventListener(name, progress);
    video.addEventListener("volumechange", sound);
    sync();
    sound();

    // Controls to state.
    const toggle = () => (video.paused ? video.play().catch(() => {}) : video.pause());
    const jump = (seconds) => {
      if (!Number.isFinite(video.duration)) return;
      video.currentTime = Math.min(Math.max(0, video.currentTime + seconds), video.duration);
    };
    const setVolume = (value) => {
      video.volume = Math.min(1, Math.max(0, value));
      video.muted = video.volume === 0;
    };
    const toggleTheater = () => {
      const on = document.documentElement.dataset.theater !== "1";
      if (on) document.documentElement.dataset.theater = "1";
      else delete document.documentElement.dataset.theater;
      store.set("theater", on);
    };
    const toggleFull = () => {
      if (document.fullscreenElement) document.exitFullscreen?.();
      else root.requestFullscreen?.().catch(() => {});
    };
    const showHelp = (show) => {
      dialog.hidden = !show;
      if (show) dialog.querySelector("button")?.focus();
      else help.focus();
    };
    play.addEventListener("click", toggle);
    bigPlay.addEventListener("click", toggle);
    video.addEventListener("click", toggle);
    seek.addEventListener("input", () => (video.currentTime = Number(seek.value)));
    mute.addEventListener("click", () => (video.muted = !video.muted));
    volume.addEventListener("input", () => setVolume(Number(volume.value)));
    theater.addEventListener("click", toggleTheater);
    full.addEventListener("click", toggleFull);
    help.addEventListener("click", () => showHelp(dialog.hidden));
    dialog.querySelector("button")?.addEventListener("click", () => showHelp(false));

    // Seek-bar previews from the storyboard.
    const storyboard = root.dataset.storyboard;
    seek.addEventListener("pointermove", async (event) => {
      const duration = Number(seek.max);
      if (!duration) return;
      const box = seek.getBoundingClientRect();
      const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      const at = fraction * duration;
      previewTime.textContent = clock(at);
      preview.hidden = false;
      preview.style.left = `${fraction * 100}%`;
      const cues = storyboard ? await loadVtt(storyboard) : null;
      const cue = cues?.find((c) => at >= c.start && at < c.end) ?? cues?.[cues.length - 1];
      if (cue) {
        showCue(previewFrame, cue);
        preview.dataset.cue = String(cues.indexOf(cue));
      }
    });
    seek.addEventListener("pointerleave", () => (preview.hidden = true));

    // Keyboard, anywhere on the page but in a text field.
    document.addEventListener("keydown", (event) => {
      if (!root.isConnected || event.ctrlKey || event.metaKey || event.altKey) return;
      const target = event.target;
      if (target?.closest?.("input:not([type=range]), textarea, select, [contenteditable]")) return;
      if (target?.closest?.("button") && (event.key === " " || event.key === "Enter")) return;
      const key = event.key;
      const digits = "0123456789";
      let handled = true;
      if (key === " " || key === "k" || key === "K") toggle();
      else if (key === "j" || key === "J") jump(-10);
      else if (key === "l" || key === "L") jump(10);
      else if (key === "ArrowLeft") jump(-5);
      else if (key === "ArrowRight") jump(5);
      else if (key === "ArrowUp") setVolume(video.volume + 0.05);
      else if (key === "ArrowDown") setVolume(video.volume - 0.05);
      else if (key === "m" || key === "M") video.muted = !video.muted;
      else if (key === "f" || key === "F") toggleFull();
      else if (key === "t" || key === "T") toggleTheater();
      else if (key === "?") showHelp(dialog.hidden);
      else if (key === "Escape" && !dialog.hidden) showHelp(false);
      else if (digits.includes(key) && key.length === 1 && Number.isFinite(video.duration)) {
        video.currentTime = (video.duration * Number(key)) / 10;
      } else handled = false;
      if (handled) event.preventDefault();
    });
  }

  // --- start ---------------------------------------------------------------------------

  function scan(root = document) {
    root.querySelectorAll?.(".player[data-src]:not([data-ready])").forEach(setUpPlayer);
    root.querySelectorAll?.(".video-card[data-sprite-vtt]:not([data-ready])").forEach(setUpCard);
  }

  let started = false;
  function start() {
    if (started) return;
    started = true;
    scan();
    document.documentElement.dataset.enhanced = "";
    new MutationObserver(() => scan()).observe(document.body, { childList: true, subtree: true });
  }

  window.addEventListener("streamhut:hydrated", start, { once: true });
  // No wasm (it failed to load, or an embed without the app): start anyway.
  window.addEventListener("load", () => window.setTimeout(start, 1500), { once: true });
})();
