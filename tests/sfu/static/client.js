// A minimal SFU client speaking the spec's envelope: one RTCPeerConnection to the SFU.
// Used by the tests through the harness (ws url given) or through confer's /ws/signaling.
'use strict';
window.sfu = (() => {
  const state = { log: [], speaker: null, tracks: {}, errors: [], resets: 0, offers: 0 };
  let pc = null, ws = null, local = null, screen = null, opts = {};
  const log = (...a) => state.log.push(a.join(' '));
  const send = (type, payload) => ws.send(JSON.stringify({ type, to_user_id: 0, payload,
    meeting_id: opts.meetingId, timestamp: new Date().toISOString() }));

  function newPc() {
    pc = new RTCPeerConnection({ iceServers: opts.iceServers || [],
      iceTransportPolicy: opts.relayOnly ? 'relay' : 'all', bundlePolicy: 'max-bundle' });
    pc.onicecandidate = (e) => {
      if (e.candidate) send(3, { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid,
                                 sdpMLineIndex: e.candidate.sdpMLineIndex });
    };
    pc.ontrack = (e) => {
      const mid = e.transceiver.mid;
      const el = document.createElement(e.track.kind === 'video' ? 'video' : 'audio');
      el.autoplay = true; el.muted = true; el.playsInline = true; el.dataset.mid = mid;
      el.srcObject = new MediaStream([e.track]);
      document.body.appendChild(el);
    };
    return pc;
  }

  async function publish() {
    if (local) {
      const a = local.getAudioTracks()[0], v = local.getVideoTracks()[0];
      if (a) pc.addTransceiver(a, { direction: 'sendonly', streams: [local] });
      if (v) {
        const init = { direction: 'sendonly', streams: [local] };
        if (opts.simulcast) init.sendEncodings = [
          { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
          { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
          { rid: 'f', maxBitrate: 1500000 }];
        pc.addTransceiver(v, init);
      }
    } else {  // receive only: an offer needs at least one m-line
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
    await offer();
  }

  function sourcesOf() {
    const out = {};
    for (const t of pc.getTransceivers()) {
      const track = t.sender.track;
      if (!track || !t.mid) continue;
      out[t.mid] = track.kind === 'audio' ? 'microphone' : (track === screenTrack() ? 'screen' : 'camera');
    }
    return out;
  }
  const screenTrack = () => screen && screen.getVideoTracks()[0];

  async function offer() {
    const o = await pc.createOffer();
    await pc.setLocalDescription(o);
    send(1, { type: 'offer', sdp: pc.localDescription.sdp, sources: sourcesOf() });
  }

  async function onMessage(msg) {
    const p = msg.payload || {};
    if (msg.type === 1) {
      state.offers += 1;
      for (const t of p.tracks || []) state.tracks[t.mid] = t;
      if (pc.signalingState !== 'stable') {  // glare: we are polite towards our own offer? no: roll back
        await pc.setLocalDescription({ type: 'rollback' });
      }
      await pc.setRemoteDescription({ type: 'offer', sdp: p.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      send(2, { type: 'answer', sdp: pc.localDescription.sdp });
    } else if (msg.type === 2) {
      await pc.setRemoteDescription({ type: 'answer', sdp: p.sdp });
    } else if (msg.type === 3) {
      if (p.candidate) await pc.addIceCandidate(p);
    } else if (msg.type === 13) {
      state.errors.push(p);
    } else if (msg.type === 30) {
      state.speaker = p;
    } else if (msg.type === 32) {
      state.resets += 1;
      pc.close();
      document.querySelectorAll('video[data-mid],audio[data-mid]').forEach((e) => e.remove());
      newPc();
      await publish();
    }
  }

  async function start(o) {
    opts = o;
    if (o.media !== false) {
      local = await navigator.mediaDevices.getUserMedia({ audio: true,
        video: { width: o.width || 640, height: o.height || 360, frameRate: 30 } });
    }
    ws = new WebSocket(o.url);
    let chain = Promise.resolve();
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      chain = chain.then(() => onMessage(msg)).catch((err) => { log('ERR', err); state.errors.push(String(err)); });
    };
    await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
    if (o.onOpen) await o.onOpen(send);
    newPc();
    await publish();
  }

  async function shareScreen() {
    // A second camera-like track stands in for getDisplayMedia in headless tests.
    screen = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 } });
    pc.addTransceiver(screen.getVideoTracks()[0], { direction: 'sendonly', streams: [screen] });
    await offer();
  }

  async function stopScreen() {
    const t = pc.getTransceivers().find((x) => x.sender.track === screenTrack());
    if (t) { t.sender.replaceTrack(null); t.direction = 'inactive'; }
    screen.getTracks().forEach((x) => x.stop()); screen = null;
    await offer();
  }

  function constrain(items) { send(31, { tracks: items }); }

  async function stats() {
    const out = { conn: pc && pc.connectionState, inbound: {}, outbound: [] };
    if (!pc) return out;
    const rep = await pc.getStats();
    rep.forEach((s) => {
      if (s.type === 'inbound-rtp') {
        out.inbound[s.mid] = { kind: s.kind, mid: s.mid, framesDecoded: s.framesDecoded,
          frameWidth: s.frameWidth, frameHeight: s.frameHeight, packetsReceived: s.packetsReceived,
          packetsLost: s.packetsLost, nackCount: s.nackCount, pliCount: s.pliCount,
          totalSamplesReceived: s.totalSamplesReceived, concealedSamples: s.concealedSamples,
          bytesReceived: s.bytesReceived, audioLevel: s.audioLevel, freezeCount: s.freezeCount,
          totalFreezesDuration: s.totalFreezesDuration, retransmittedPacketsReceived: s.retransmittedPacketsReceived,
          source: (state.tracks[s.mid] || {}).source, user_id: (state.tracks[s.mid] || {}).user_id };
      } else if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = rep.get(s.selectedCandidatePairId);
        const l = pair && rep.get(pair.localCandidateId), r = pair && rep.get(pair.remoteCandidateId);
        out.pair = { local: l && l.candidateType, remote: r && r.candidateType,
                     remoteAddress: r && r.address };
      } else if (s.type === 'outbound-rtp') {
        out.outbound.push({ kind: s.kind, rid: s.rid, packetsSent: s.packetsSent, frameHeight: s.frameHeight,
          nackCount: s.nackCount, pliCount: s.pliCount, targetBitrate: s.targetBitrate,
          qualityLimitationReason: s.qualityLimitationReason });
      }
    });
    return out;
  }

  return { start, stats, shareScreen, stopScreen, constrain, send: (t, p) => send(t, p), state,
           get pc() { return pc; } };
})();
