// One RTCPeerConnection to the SFU. We offer what we publish (labelled by `sources`); the SFU
// offers what we receive (labelled by `tracks`) whenever subscriptions change. When both offer
// at once the client's offer wins: the SFU drops its own and offers again after answering ours,
// so we ignore an SFU offer that arrives while ours is outstanding (perfect negotiation, with
// the SFU as the polite side).

import { T } from './signaling.js';

const SFU = 0; // to_user_id of the media server
const ACTIVE_SPEAKER = 30;
const VIDEO_CONSTRAINTS = 31;
const MEDIA_RESET = 32;
export const MEDIA_TYPES = new Set([T.OFFER, T.ANSWER, T.ICE, ACTIVE_SPEAKER, MEDIA_RESET]);
const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_500_000 },
];

/**
 * Events: 'track' {mid, track, info}, 'trackended' {mid, info}, 'state' {state},
 * 'speaker' {user_id, peer_id}, 'error' {error}.
 */
export class MediaLink extends EventTarget {
  constructor(signaling, iceServers) {
    super();
    this.signaling = signaling;
    this.iceServers = iceServers || [];
    this.published = new Map(); // source -> {track, stream}
    this.pc = null;
    this.open();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  open() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    this.pc = pc;
    this.makingOffer = false;
    this.transceivers = new Map(); // source -> transceiver
    this.remote = new Map(); // mid -> info from the SFU's `tracks`
    this.pendingIce = [];
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate || pc !== this.pc) return;
      this.signaling.send(T.ICE, { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex }, { toUserId: SFU });
    };
    pc.onnegotiationneeded = () => this.enqueue(() => this.offer());
    pc.ontrack = (e) => {
      if (pc !== this.pc) return;
      const mid = e.transceiver.mid;
      this.emit('track', { mid, track: e.track, info: this.remote.get(mid) || { kind: e.track.kind } });
    };
    pc.onconnectionstatechange = () => {
      if (pc === this.pc) this.emit('state', { state: pc.connectionState });
    };
    for (const [source, { track, stream }] of this.published) this.addTransceiver(source, track, stream);
    if (this.receiveOnly) this.listenOnly();
  }

  addTransceiver(source, track, stream) {
    const init = { direction: 'sendonly', streams: [stream] };
    const height = track.getSettings?.().height || 0;
    if (source === 'camera' && height >= 360) {
      // Simulcast: the SFU forwards each viewer the smallest layer that fills their tile.
      init.sendEncodings = SIMULCAST;
    }
    const tr = this.pc.addTransceiver(track, init);
    this.transceivers.set(source, tr);
    return tr;
  }

  /** Start, replace or stop (track null) what we send for `source` (microphone, camera, screen). */
  async publish(source, track, stream) {
    if (track) this.published.set(source, { track, stream });
    else this.published.delete(source);
    const tr = this.transceivers.get(source);
    if (tr && tr.currentDirection !== 'stopped') {
      await tr.sender.replaceTrack(track);
      const want = track ? 'sendonly' : 'inactive';
      if (tr.direction !== want) tr.direction = want; // renegotiates: the SFU learns it stopped
      return;
    }
    if (track) this.addTransceiver(source, track, stream);
  }

  sources() {
    const out = {};
    for (const [source, tr] of this.transceivers) if (tr.mid !== null) out[tr.mid] = source;
    return out;
  }

  /** Receive-only (audience): an offer needs at least one m-line to open the transport. */
  listenOnly() {
    this.receiveOnly = true;
    if (this.pc.getTransceivers().length === 0) {
      this.pc.addTransceiver('audio', { direction: 'recvonly' });
      this.pc.addTransceiver('video', { direction: 'recvonly' });
    }
  }

  async offer() {
    const pc = this.pc;
    if (pc.getTransceivers().length === 0) return;
    try {
      this.makingOffer = true;
      await pc.setLocalDescription();
      if (pc !== this.pc) return;
      this.signaling.send(T.OFFER, { sdp: pc.localDescription.sdp, type: 'offer', sources: this.sources() }, { toUserId: SFU });
    } catch (error) {
      this.emit('error', { error });
    } finally {
      this.makingOffer = false;
    }
  }

  /** Run negotiation steps one at a time: an offer must not start while an answer applies. */
  enqueue(step) {
    this.chain = (this.chain || Promise.resolve()).then(step).catch((error) => this.emit('error', { error }));
    return this.chain;
  }

  /** A media message from the server (from_user_id 0). */
  handle(msg) {
    return this.enqueue(() => this.apply(msg));
  }

  async apply(msg) {
    const p = msg.payload || {};
    const pc = this.pc;
    try {
      if (msg.type === T.OFFER) {
        if (this.makingOffer || pc.signalingState !== 'stable') return; // ours wins; it re-offers
        const previous = this.remote;
        this.remote = new Map((p.tracks || []).map((t) => [String(t.mid), t]));
        await pc.setRemoteDescription({ type: 'offer', sdp: p.sdp });
        await this.flushIce();
        await pc.setLocalDescription();
        this.signaling.send(T.ANSWER, { sdp: pc.localDescription.sdp, type: 'answer' }, { toUserId: SFU });
        for (const [mid, info] of previous) {
          if (!this.remote.has(mid)) this.emit('trackended', { mid, info });
        }
        for (const [mid, info] of this.remote) {
          const before = previous.get(mid);
          if (before && (before.user_id !== info.user_id || before.source !== info.source)) {
            // The SFU reused a transceiver for someone else's media.
            this.emit('trackended', { mid, info: before });
            const tr = pc.getTransceivers().find((t) => t.mid === mid);
            if (tr) this.emit('track', { mid, track: tr.receiver.track, info });
          }
        }
      } else if (msg.type === T.ANSWER) {
        if (pc.signalingState === 'have-local-offer') {
          await pc.setRemoteDescription({ type: 'answer', sdp: p.sdp });
          await this.flushIce();
        }
      } else if (msg.type === T.ICE) {
        if (!p.candidate) return;
        if (!pc.remoteDescription) this.pendingIce.push(p);
        else await pc.addIceCandidate(p).catch(() => {}); // a stale candidate after a rollback
      } else if (msg.type === ACTIVE_SPEAKER) {
        this.emit('speaker', { user_id: p.user_id ?? null, peer_id: p.peer_id ?? null });
      } else if (msg.type === MEDIA_RESET) {
        this.restart();
      }
    } catch (error) {
      this.emit('error', { error });
    }
  }

  async flushIce() {
    const queued = this.pendingIce;
    this.pendingIce = [];
    for (const c of queued) await this.pc.addIceCandidate(c).catch(() => {});
  }

  /** Tell the SFU the size each remote video is shown at (0 x 0 pauses it). */
  sendConstraints(tracks) {
    this.signaling.send(VIDEO_CONSTRAINTS, { tracks }, { toUserId: SFU });
  }

  /** A new connection with the same published tracks (media-reset, or a lost session). */
  restart() {
    const old = this.pc;
    for (const [mid, info] of this.remote) this.emit('trackended', { mid, info });
    this.open();
    old.close();
  }

  close() {
    this.pc?.close();
    this.published.clear();
  }
}
