// Cameras and microphones: opening them with the chosen devices, listing them, a level meter.

const PREFS = 'confer.devices';

export function loadPrefs() {
  try {
    return { audioOn: true, videoOn: true, ...JSON.parse(localStorage.getItem(PREFS) || '{}') };
  } catch {
    return { audioOn: true, videoOn: true };
  }
}

export function savePrefs(prefs) {
  localStorage.setItem(PREFS, JSON.stringify(prefs));
}

function audioConstraints(deviceId) {
  return {
    echoCancellation: true, noiseSuppression: true, autoGainControl: true,
    ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
  };
}

function videoConstraints(deviceId) {
  return {
    width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 },
    ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
  };
}

export function mediaAvailable() {
  return Boolean(navigator.mediaDevices?.getUserMedia);
}

/**
 * Open what was asked for; when both fail together, try each alone so that a missing camera
 * does not also cost the microphone. Returns {stream, error}: error is the last failure.
 */
export async function openMedia({ audio = true, video = true, audioId, videoId } = {}) {
  const stream = new MediaStream();
  if (!mediaAvailable() || (!audio && !video)) {
    return { stream, error: mediaAvailable() ? null : new DOMException('no media', 'NotSupportedError') };
  }
  const want = { audio: audio && audioConstraints(audioId), video: video && videoConstraints(videoId) };
  try {
    const s = await navigator.mediaDevices.getUserMedia(want);
    return { stream: s, error: null };
  } catch (err) {
    if (!(audio && video)) return { stream, error: err };
    let last = err;
    for (const kind of ['audio', 'video']) {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ [kind]: want[kind] });
        s.getTracks().forEach((t) => stream.addTrack(t));
      } catch (e) {
        last = e;
      }
    }
    return { stream, error: stream.getTracks().length === 2 ? null : last };
  }
}

/** Replace one kind of track in `stream` with a newly opened device. */
export async function switchDevice(stream, kind, deviceId) {
  const constraints = kind === 'audio' ? { audio: audioConstraints(deviceId) } : { video: videoConstraints(deviceId) };
  const fresh = await navigator.mediaDevices.getUserMedia(constraints);
  const track = fresh.getTracks()[0];
  for (const old of stream.getTracks().filter((t) => t.kind === kind)) {
    track.enabled = old.enabled;
    old.stop();
    stream.removeTrack(old);
  }
  stream.addTrack(track);
  return track;
}

export async function listDevices() {
  const out = { audioinput: [], videoinput: [], audiooutput: [] };
  if (!navigator.mediaDevices?.enumerateDevices) return out;
  const all = await navigator.mediaDevices.enumerateDevices();
  for (const d of all) {
    if (!out[d.kind] || !d.deviceId) continue;
    out[d.kind].push({ id: d.deviceId, label: d.label || `${d.kind} ${out[d.kind].length + 1}` });
  }
  return out;
}

export function stopStream(stream) {
  stream?.getTracks().forEach((t) => t.stop());
}

/** Draw the microphone level into a <meter>-like element's --level; returns a stop function. */
export function levelMeter(stream, el) {
  const track = stream.getAudioTracks()[0];
  if (!track || !window.AudioContext) return () => {};
  const ctx = new AudioContext();
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const data = new Uint8Array(analyser.fftSize);
  let raf = 0;
  const tick = () => {
    analyser.getByteTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v - 128));
    el.style.setProperty('--level', String(Math.min(1, (peak / 128) * 2.5)));
    raf = requestAnimationFrame(tick);
  };
  tick();
  return () => {
    cancelAnimationFrame(raf);
    source.disconnect();
    ctx.close().catch(() => {});
  };
}
