// Streamhut's behaviour that needs no Rust: the video player (hls.js, shipped with the
// site, loaded only where a player is), card hover previews, and share buttons.
//
// The pages are rendered on the server; the wasm app hydrates only its islands (the menu
// button, the description's "…more"), never the players and cards this script enhances,
// so it starts as soon as the document is parsed, and watches for players and cards added
// later. Without JavaScript, the video element keeps its native controls.
(() => {
  "use strict";

  // hls.js sits next to this script, in the same content-addressed directory.
  const HLS_SRC = new URL("hls.min.js", document.currentScript?.src ?? window.location.href).href;
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
  //
  // hls.js (the full build: separate audio renditions, several audio tracks, subtitles)
  // is loaded on intent: when a viewer points at, focuses, touches or starts a player, so
  // a page costs nothing for it until then. A click on Play made before this script ran
  // is recorded by the page's first script (`data-pending-play`) and honoured here.

  let hlsLoading = null;
  function loadHls() {
    if (window.Hls) return Promise.resolve(window.Hls);
    hlsLoading ??= new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = HLS_SRC;
      script.onload = () => resolve(window.Hls);
      script.onerror = () => {
        hlsLoading = null;
        reject(new Error("the player library did not load"));
      };
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

  const SPEEDS = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];
  /** Seconds watched before a position is worth offering again. */
  const RESUME_AFTER = 30;

  const SHORTCUTS = [
    ["Space or K", "Play or pause"],
    ["J / L", "Back or forward 10 seconds"],
    ["← / →", "Back or forward 5 seconds"],
    ["↑ / ↓", "Volume up or down"],
    ["< / >", "Slower or faster"],
    ["C", "Captions on or off"],
    ["M", "Mute or unmute"],
    ["F", "Full screen"],
    ["I", "Picture in picture"],
    ["T", "Theater mode"],
    ["0 – 9", "Jump to 0 % – 90 %"],
    ["?", "Show these shortcuts"],
  ];

  const ICONS = {
    play: "M8 5v14l11-7z",
    pause: "M7 5h4v14H7zM13 5h4v14h-4z",
    volume: "M4 9v6h4l5 4V5L8 9zM16 8.5a4.5 4.5 0 0 1 0 7M18.5 6a8 8 0 0 1 0 12",
    muted: "M4 9v6h4l5 4V5L8 9zM16 9l5 6M21 9l-5 6",
    captions: "M3 5h18v14H3zM7 10.5a2 2 0 0 1 3.5-1.3M7 13.5a2 2 0 0 0 3.5 1.3M13 10.5a2 2 0 0 1 3.5-1.3M13 13.5a2 2 0 0 0 3.5 1.3",
    settings: "M12 8.5a3.5 3.5 0 1 0 0 7 3.5 3.5 0 0 0 0-7zM19.4 13a7.6 7.6 0 0 0 0-2l2-1.6-2-3.4-2.4 1a7.4 7.4 0 0 0-1.7-1L15 3.5h-4l-.3 2.5a7.4 7.4 0 0 0-1.7 1l-2.4-1-2 3.4 2 1.6a7.6 7.6 0 0 0 0 2l-2 1.6 2 3.4 2.4-1a7.4 7.4 0 0 0 1.7 1l.3 2.5h4l.3-2.5a7.4 7.4 0 0 0 1.7-1l2.4 1 2-3.4z",
    pip: "M3 5h18v14H3zM12 11h7v6h-7z",
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

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const languageNames = (() => {
    try {
      return new Intl.DisplayNames([navigator.language || "en"], { type: "language" });
    } catch {
      return null;
    }
  })();

  /** Labels for audio or subtitle tracks: their name, unless every track has the same
   *  one (stream.place names audio by codec), then their language or their number. */
  function trackLabels(tracks, noun) {
    const names = tracks.map((t) => t.name || "");
    const distinct = new Set(names).size === names.length && !names.some((n) => /^mp4a\.|^[a-z]+\d+\./i.test(n));
    return tracks.map((track, n) => {
      if (distinct && track.name) return track.name;
      const language = track.lang && languageNames ? languageNames.of(track.lang) : "";
      if (language && new Set(tracks.map((t) => t.lang)).size === tracks.length) return language;
      return `${noun} ${n + 1}${language ? ` (${language})` : ""}`;
    });
  }

  function setUpPlayer(root) {
    root.dataset.ready = "1";
    const video = root.querySelector("video");
    if (!video) return;
    const src = root.dataset.src;
    const videoKey = root.dataset.video ?? src;
    const requestedStart = Number(root.dataset.start ?? 0) || 0;
    const knownDuration = Number(root.dataset.duration ?? 0) || 0;
    let chapters = [];
    try {
      chapters = JSON.parse(root.dataset.chapters ?? "[]");
    } catch {
      chapters = [];
    }
    video.controls = false;
    root.classList.add("player--custom");

    const overlay = element("div", "player__overlay");
    overlay.setAttribute("role", "alert");
    overlay.hidden = true;
    const bigPlay = button("play", "Play");
    bigPlay.classList.add("player__big-play");
    const resume = element("div", "player__resume");
    resume.hidden = true;
    const caption = element("div", "player__toast");
    caption.setAttribute("aria-live", "polite");
    caption.hidden = true;

    const chrome = element("div", "player__controls");
    const play = button("play", "Play (k)");
    const seek = slider("player__seek", String(knownDuration || 0), "0.1", "Seek");
    const time = element("span", "player__time", `0:00 / ${clock(knownDuration)}`);
    time.setAttribute("aria-live", "off");
    const mute = button("volume", "Mute (m)");
    const volume = slider("player__volume", "1", "0.05", "Volume");
    const cc = button("captions", "Subtitles (c)");
    cc.hidden = true;
    cc.setAttribute("aria-pressed", "false");
    const settings = button("settings", "Settings");
    settings.setAttribute("aria-haspopup", "menu");
    settings.setAttribute("aria-expanded", "false");
    const pip = button("pip", "Picture in picture (i)");
    pip.hidden = !(document.pictureInPictureEnabled && !video.disablePictureInPicture);
    const theater = button("theater", "Theater mode (t)");
    const full = button("fullscreen", "Full screen (f)");
    const help = button("help", "Keyboard shortcuts (?)");
    const preview = element("div", "player__preview");
    preview.hidden = true;
    const previewFrame = element("div", "player__preview-frame");
    const previewChapter = element("span", "player__preview-chapter");
    const previewTime = element("span", "player__preview-time");
    preview.append(previewFrame, previewChapter, previewTime);
    const markers = element("div", "player__markers");
    markers.setAttribute("aria-hidden", "true");
    const seekWrap = element("div", "player__seek-wrap");
    seekWrap.append(seek, markers, preview);
    const chapterName = element("span", "player__chapter");
    const spacer = element("span", "player__spacer");
    chrome.append(play, seekWrap, time, chapterName, mute, volume, spacer, cc, settings, pip, help, theater, full);

    const menu = element("div", "player__menu");
    menu.setAttribute("role", "menu");
    menu.setAttribute("aria-label", "Settings");
    menu.hidden = true;

    const dialog = element("div", "player__help");
    dialog.hidden = true;
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-label", "Keyboard shortcuts");
    dialog.innerHTML =
      `<h2 class="player__help-title">Keyboard shortcuts</h2><dl>` +
      SHORTCUTS.map(([key, what]) => `<dt><kbd>${key}</kbd></dt><dd>${what}</dd>`).join("") +
      `</dl><button type="button" class="player__help-close">Close</button>`;
    root.append(overlay, bigPlay, resume, caption, chrome, menu, dialog);

    // Preferences: volume, mute, theater mode, speed and captions follow the viewer.
    video.volume = Math.min(1, Math.max(0, Number(store.get("volume", 1)) || 0));
    video.muted = Boolean(store.get("muted", false));
    volume.value = String(video.volume);
    if (store.get("theater", false)) document.documentElement.dataset.theater = "1";
    const savedSpeed = Number(store.get("speed", 1));
    if (SPEEDS.includes(savedSpeed)) video.playbackRate = savedSpeed;
    video.defaultPlaybackRate = video.playbackRate;

    const toast = (text) => {
      caption.textContent = text;
      caption.hidden = false;
      window.clearTimeout(caption.timer);
      caption.timer = window.setTimeout(() => (caption.hidden = true), 1500);
    };

    // The stream: attached on intent, re-attached by "Try again".
    let hls = null;
    let attached = null;
    let wantsPlay = false;
    const native = video.canPlayType("application/vnd.apple.mpegurl");

    const fail = (message) => {
      overlay.hidden = false;
      overlay.innerHTML = "";
      const text = element("p", "", message);
      const retry = element("button", "button", "Try again");
      retry.type = "button";
      retry.addEventListener("click", () => {
        overlay.hidden = true;
        root.classList.remove("player--failed");
        hls?.destroy();
        hls = null;
        attached = null;
        wantsPlay = true;
        attach();
      });
      overlay.append(text, retry);
      root.classList.add("player--failed");
      sync();
      retry.focus();
    };

    /** What our getPlaylist answered, when it was an XRPC error. */
    const reason = async (url) => {
      try {
        const response = await fetch(url, { credentials: "same-origin" });
        if (response.ok) return null;
        const body = await response.json();
        return typeof body.message === "string" ? body.message : null;
      } catch {
        return null;
      }
    };

    const startAt = () => {
      const resumeAt = requestedStart > 0 ? 0 : Number(store.get(`resume.${videoKey}`, 0)) || 0;
      return requestedStart > 0 ? requestedStart : resumeAt > 0 ? 0 : -1;
    };

    const attach = () => {
      attached ??= (async () => {
        try {
          const Hls = await loadHls();
          if (Hls?.isSupported()) {
            hls = new Hls({
              startPosition: startAt(),
              enableWorker: false,
              capLevelToPlayerSize: true,
              renderTextTracksNatively: true,
            });
            let recovered = false;
            hls.on(Hls.Events.ERROR, async (_, data) => {
              if (!data.fatal) return;
              if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
                recovered = true;
                hls.recoverMediaError();
                return;
              }
              const url = new URL(data.url ?? data.context?.url ?? src, window.location.href);
              hls.destroy();
              if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
                const said = url.origin === window.location.origin ? await reason(url.href) : null;
                fail(
                  said
                    ? `This video can’t be loaded right now: ${said}.`
                    : "This video can’t be loaded right now. Check your connection, or try again in a moment.",
                );
              } else {
                fail("This video can’t be played in this browser.");
              }
            });
            hls.on(Hls.Events.MANIFEST_PARSED, () => {
              setUpCaptions();
              buildMenu();
              if (wantsPlay) video.play().catch(() => {});
            });
            hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, buildMenu);
            hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, buildMenu);
            hls.on(Hls.Events.LEVEL_SWITCHED, buildMenu);
            hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => {
              setUpCaptions();
              buildMenu();
            });
            // hls.js settles its own track modes while media attaches: the viewer's saved
            // subtitles choice is applied again once there is something to show.
            video.addEventListener("loadeddata", setUpCaptions, { once: true });
            hls.loadSource(src);
            hls.attachMedia(video);
            return;
          }
        } catch {
          if (!native) {
            attached = null;
            fail("The player could not start. Check your connection and try again.");
            return;
          }
        }
        if (native) {
          video.src = src;
          const at = startAt();
          if (at > 0) video.addEventListener("loadedmetadata", () => (video.currentTime = at), { once: true });
          if (wantsPlay) video.play().catch(() => {});
        } else {
          fail("This browser cannot play HLS video.");
        }
      })();
      return attached;
    };
    for (const intent of ["pointerenter", "focusin", "touchstart"]) {
      root.addEventListener(intent, () => attach(), { once: true, passive: true });
    }
    video.addEventListener("error", () => {
      if (!hls && attached) fail("This video can’t be played right now.");
    });

    // Captions: the viewer's choice is remembered; `c` toggles.
    const subtitleTracks = () => (hls ? hls.subtitleTracks : []);
    const captionsOn = () => (hls ? hls.subtitleTrack >= 0 && hls.subtitleDisplay : false);
    const setCaptions = (index) => {
      if (!hls) return;
      hls.subtitleTrack = index;
      hls.subtitleDisplay = index >= 0;
      store.set("captions", index >= 0 ? (subtitleTracks()[index]?.lang ?? "on") : "off");
      cc.setAttribute("aria-pressed", String(index >= 0));
      root.classList.toggle("has-captions-on", index >= 0);
      buildMenu();
    };
    const toggleCaptions = () => {
      const tracks = subtitleTracks();
      if (tracks.length === 0) return;
      if (captionsOn()) {
        setCaptions(-1);
        toast("Subtitles off");
      } else {
        const saved = store.get("captions", "off");
        const index = Math.max(0, tracks.findIndex((t) => t.lang === saved));
        setCaptions(index);
        toast(`Subtitles: ${trackLabels(tracks, "Subtitles")[index]}`);
      }
    };
    const setUpCaptions = () => {
      const tracks = subtitleTracks();
      cc.hidden = tracks.length === 0;
      if (tracks.length === 0) return;
      const saved = store.get("captions", "off");
      if (saved === "off") setCaptions(-1);
      else setCaptions(Math.max(0, tracks.findIndex((t) => t.lang === saved)));
    };

    // The settings menu: speed, quality (with Auto), audio track, subtitles.
    const speedLabel = (rate) => (rate === 1 ? "Normal" : `${rate}×`);
    const setSpeed = (rate) => {
      video.playbackRate = rate;
      video.defaultPlaybackRate = rate;
      store.set("speed", rate);
      toast(`Speed: ${speedLabel(rate)}`);
      buildMenu();
    };
    const stepSpeed = (direction) => {
      const at = SPEEDS.indexOf(video.playbackRate);
      const next = SPEEDS[Math.min(SPEEDS.length - 1, Math.max(0, (at < 0 ? SPEEDS.indexOf(1) : at) + direction))];
      setSpeed(next);
    };
    let openSection = null;
    const buildMenu = () => {
      const focused = menu.contains(document.activeElement) ? document.activeElement.dataset.item : null;
      menu.innerHTML = "";
      const sections = [];
      sections.push({
        key: "speed",
        title: "Playback speed",
        value: speedLabel(video.playbackRate),
        options: SPEEDS.map((rate) => ({ label: speedLabel(rate), checked: video.playbackRate === rate, pick: () => setSpeed(rate) })),
      });
      if (hls && hls.levels.length > 0) {
        const heights = hls.levels.map((level, n) => ({ n, height: level.height || 0 }));
        const current = hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : hls.loadLevel];
        sections.push({
          key: "quality",
          title: "Quality",
          value: hls.autoLevelEnabled ? `Auto${current?.height ? ` (${current.height}p)` : ""}` : `${current?.height ?? "?"}p`,
          options: [
            { label: "Auto", checked: hls.autoLevelEnabled, pick: () => { hls.currentLevel = -1; buildMenu(); } },
            ...heights
              .sort((a, b) => b.height - a.height)
              .map(({ n, height }) => ({
                label: height ? `${height}p` : `Level ${n + 1}`,
                checked: !hls.autoLevelEnabled && hls.currentLevel === n,
                pick: () => { hls.currentLevel = n; buildMenu(); },
              })),
          ],
        });
      }
      if (hls && hls.audioTracks.length > 1) {
        const labels = trackLabels(hls.audioTracks, "Track");
        sections.push({
          key: "audio",
          title: "Audio track",
          value: labels[hls.audioTrack] ?? "",
          options: hls.audioTracks.map((track, n) => ({
            label: labels[n],
            checked: hls.audioTrack === n,
            pick: () => { hls.audioTrack = n; toast(`Audio: ${labels[n]}`); buildMenu(); },
          })),
        });
      }
      if (subtitleTracks().length > 0) {
        const labels = trackLabels(subtitleTracks(), "Subtitles");
        sections.push({
          key: "subtitles",
          title: "Subtitles",
          value: captionsOn() ? labels[hls.subtitleTrack] : "Off",
          options: [
            { label: "Off", checked: !captionsOn(), pick: () => setCaptions(-1) },
            ...labels.map((label, n) => ({ label, checked: captionsOn() && hls.subtitleTrack === n, pick: () => setCaptions(n) })),
          ],
        });
      }
      for (const section of sections) {
        if (openSection && openSection !== section.key) continue;
        if (!openSection) {
          const item = element("button", "player__menu-item");
          item.type = "button";
          item.setAttribute("role", "menuitem");
          item.dataset.item = section.key;
          item.setAttribute("aria-haspopup", "true");
          item.append(element("span", "", section.title), element("span", "player__menu-value", section.value));
          item.addEventListener("click", () => {
            openSection = section.key;
            buildMenu();
            menu.querySelector("[role=menuitemradio][aria-checked=true], [role=menuitemradio]")?.focus();
          });
          menu.append(item);
        } else {
          const back = element("button", "player__menu-back", `‹ ${section.title}`);
          back.type = "button";
          back.setAttribute("role", "menuitem");
          back.dataset.item = "back";
          back.addEventListener("click", () => {
            openSection = null;
            buildMenu();
            menu.querySelector(`[data-item=${section.key}]`)?.focus();
          });
          menu.append(back);
          for (const [n, option] of section.options.entries()) {
            const item = element("button", "player__menu-item", option.label);
            item.type = "button";
            item.setAttribute("role", "menuitemradio");
            item.setAttribute("aria-checked", String(option.checked));
            item.dataset.item = `${section.key}-${n}`;
            item.addEventListener("click", () => {
              option.pick();
              openSection = null;
              closeMenu();
            });
            menu.append(item);
          }
        }
      }
      if (focused) menu.querySelector(`[data-item="${focused}"]`)?.focus();
    };
    const closeMenu = () => {
      menu.hidden = true;
      openSection = null;
      settings.setAttribute("aria-expanded", "false");
    };
    const openMenu = () => {
      attach();
      openSection = null;
      buildMenu();
      menu.hidden = false;
      settings.setAttribute("aria-expanded", "true");
      menu.querySelector("button")?.focus();
    };
    settings.addEventListener("click", () => (menu.hidden ? openMenu() : closeMenu()));
    // Items are rebuilt as the menu changes: a click inside never counts as one outside.
    menu.addEventListener("click", (event) => event.stopPropagation());
    menu.addEventListener("keydown", (event) => {
      const items = [...menu.querySelectorAll("button")];
      const at = items.indexOf(document.activeElement);
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        event.stopPropagation();
        items[(at + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length]?.focus();
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        if (openSection) {
          openSection = null;
          buildMenu();
          menu.querySelector("button")?.focus();
        } else {
          closeMenu();
          settings.focus();
        }
      }
    });
    document.addEventListener("click", (event) => {
      if (!menu.hidden && !menu.contains(event.target) && !settings.contains(event.target)) closeMenu();
    });

    // Chapters: markers on the seek bar, the current one's name beside the time.
    const chapterAt = (at) => {
      let found = null;
      for (const chapter of chapters) if (at >= chapter.start) found = chapter;
      return found;
    };
    const drawMarkers = (duration) => {
      markers.innerHTML = "";
      if (!duration) return;
      for (const chapter of chapters.slice(1)) {
        if (chapter.start >= duration) continue;
        const mark = element("span", "player__marker");
        mark.style.left = `${(chapter.start / duration) * 100}%`;
        markers.append(mark);
      }
    };
    drawMarkers(knownDuration);
    root.closest(".watch")?.querySelectorAll("[data-chapter-start]").forEach((link) => {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        const at = Number(link.dataset.chapterStart);
        wantsPlay = true;
        attach().then(() => {
          video.currentTime = at;
          video.play().catch(() => {});
        });
        root.scrollIntoView({ behavior: reducedMotion.matches ? "auto" : "smooth", block: "nearest" });
      });
    });

    // Resume where the viewer left off: offered once they had watched more than 30 s.
    const resumeKey = `resume.${videoKey}`;
    const offered = requestedStart > 0 ? 0 : Number(store.get(resumeKey, 0)) || 0;
    if (offered > RESUME_AFTER) {
      resume.hidden = false;
      const go = element("button", "player__resume-button", `Resume from ${clock(offered)}`);
      go.type = "button";
      const dismiss = element("button", "player__resume-dismiss", "Start over");
      dismiss.type = "button";
      resume.append(go, dismiss);
      go.addEventListener("click", () => {
        resume.hidden = true;
        wantsPlay = true;
        attach().then(() => {
          video.currentTime = offered;
          video.play().catch(() => {});
        });
      });
      dismiss.addEventListener("click", () => {
        resume.hidden = true;
        store.set(resumeKey, 0);
      });
    }
    let lastSaved = 0;
    video.addEventListener("timeupdate", () => {
      const now = video.currentTime;
      if (Math.abs(now - lastSaved) < 5) return;
      lastSaved = now;
      const duration = Number.isFinite(video.duration) ? video.duration : 0;
      if (now > RESUME_AFTER && (!duration || now < duration - 15)) store.set(resumeKey, Math.floor(now));
      else if (duration && now >= duration - 15) store.set(resumeKey, 0);
      if (now > RESUME_AFTER) resume.hidden = true;
    });

    // State to controls.
    function sync() {
      const paused = video.paused;
      setIcon(play, paused ? "play" : "pause");
      play.setAttribute("aria-label", paused ? "Play (k)" : "Pause (k)");
      bigPlay.hidden = !paused || root.classList.contains("player--failed");
      root.classList.toggle("is-playing", !paused);
    }
    const progress = () => {
      const duration = Number.isFinite(video.duration) && video.duration > 0 ? video.duration : knownDuration;
      if (String(duration) !== seek.max) {
        seek.max = String(duration);
        drawMarkers(duration);
      }
      if (!seek.matches(":active")) seek.value = String(video.currentTime);
      seek.setAttribute("aria-valuetext", `${clock(video.currentTime)} of ${clock(duration)}`);
      time.textContent = `${clock(video.currentTime)} / ${clock(duration)}`;
      chapterName.textContent = chapterAt(video.currentTime)?.title ?? "";
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
    video.addEventListener("ratechange", () => {
      if (!menu.hidden) buildMenu();
    });
    sync();
    sound();

    // Controls to state.
    const toggle = () => {
      wantsPlay = true;
      resume.hidden = true;
      if (!attached) {
        attach();
        return;
      }
      if (video.paused) video.play().catch(() => {});
      else video.pause();
    };
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
    const togglePip = async () => {
      try {
        if (document.pictureInPictureElement) await document.exitPictureInPicture();
        else {
          await attach();
          await video.requestPictureInPicture();
        }
      } catch {
        toast("Picture in picture is not available");
      }
    };
    const showHelp = (show) => {
      dialog.hidden = !show;
      if (show) dialog.querySelector("button")?.focus();
      else help.focus();
    };
    play.addEventListener("click", toggle);
    bigPlay.addEventListener("click", toggle);
    video.addEventListener("click", toggle);
    seek.addEventListener("input", () => {
      attach();
      video.currentTime = Number(seek.value);
    });
    mute.addEventListener("click", () => (video.muted = !video.muted));
    volume.addEventListener("input", () => setVolume(Number(volume.value)));
    cc.addEventListener("click", toggleCaptions);
    pip.addEventListener("click", togglePip);
    theater.addEventListener("click", toggleTheater);
    full.addEventListener("click", toggleFull);
    help.addEventListener("click", () => showHelp(dialog.hidden));
    dialog.querySelector("button")?.addEventListener("click", () => showHelp(false));
    video.addEventListener("enterpictureinpicture", () => pip.setAttribute("aria-pressed", "true"));
    video.addEventListener("leavepictureinpicture", () => pip.setAttribute("aria-pressed", "false"));

    // Seek-bar previews from the storyboard, with the chapter under the pointer.
    const storyboard = root.dataset.storyboard;
    seek.addEventListener("pointermove", async (event) => {
      const duration = Number(seek.max);
      if (!duration) return;
      const box = seek.getBoundingClientRect();
      const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      const at = fraction * duration;
      previewTime.textContent = clock(at);
      previewChapter.textContent = chapterAt(at)?.title ?? "";
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
      if (target?.closest?.("input:not([type=range]), textarea, select, [contenteditable], .player__menu")) return;
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
      else if (key === "<" || key === ",") stepSpeed(-1);
      else if (key === ">" || key === ".") stepSpeed(1);
      else if (key === "c" || key === "C") toggleCaptions();
      else if (key === "m" || key === "M") video.muted = !video.muted;
      else if (key === "f" || key === "F") toggleFull();
      else if (key === "i" || key === "I") togglePip();
      else if (key === "t" || key === "T") toggleTheater();
      else if (key === "?") showHelp(dialog.hidden);
      else if (key === "Escape" && !dialog.hidden) showHelp(false);
      else if (digits.includes(key) && key.length === 1 && Number.isFinite(video.duration)) {
        video.currentTime = (video.duration * Number(key)) / 10;
      } else handled = false;
      if (handled) event.preventDefault();
    });

    // A Play clicked before this script ran.
    if (root.dataset.pendingPlay) {
      delete root.dataset.pendingPlay;
      toggle();
    }
  }

  // --- start ---------------------------------------------------------------------------

  // A player behind a content warning is set up once the viewer opens it, and plays.
  const gated = (player) => player.querySelector(".player__gate:not([open])");
  document.addEventListener(
    "toggle",
    (event) => {
      const gate = event.target;
      if (!gate.matches?.(".player__gate") || !gate.open) return;
      const player = gate.closest(".player");
      if (!player || player.dataset.ready) return;
      player.dataset.pendingPlay = "1";
      setUpPlayer(player);
      // The cover had focus and is gone: keep the keyboard in the player.
      player.querySelector(".player__controls button")?.focus({ preventScroll: true });
    },
    true,
  );

  function scan(root = document) {
    root.querySelectorAll?.(".player[data-src]:not([data-ready])").forEach((player) => {
      if (!gated(player)) setUpPlayer(player);
    });
    root.querySelectorAll?.(".video-card[data-sprite-vtt]:not([data-ready])").forEach(setUpCard);
  }

  // Players and cards are not islands: the wasm never hydrates them, so they are set up
  // as soon as the document is parsed (this script is deferred), without waiting for it.
  scan();
  document.documentElement.dataset.enhanced = "";
  new MutationObserver(() => scan()).observe(document.body, { childList: true, subtree: true });
})();
