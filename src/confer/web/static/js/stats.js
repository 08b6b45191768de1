// Network quality from getStats(): round-trip time and packet loss since the last sample.

export const LEVELS = {
  good: 'Good connection',
  fair: 'Unstable connection',
  poor: 'Poor connection',
  none: 'No media connection',
};

/** Classify a sample: loss is a fraction (0..1), rtt in seconds (null when unknown). */
export function classify({ loss, rtt, connected }) {
  if (!connected) return 'none';
  if (loss > 0.08 || (rtt !== null && rtt > 0.5)) return 'poor';
  if (loss > 0.02 || (rtt !== null && rtt > 0.2)) return 'fair';
  return 'good';
}

export class QualityMeter {
  /** `getPc` returns the current connection (it is replaced after a media reset). */
  constructor(getPc, onSample, intervalMs = 2000) {
    this.getPc = getPc;
    this.onSample = onSample;
    this.prev = { lost: 0, received: 0 };
    this.timer = setInterval(() => this.sample().catch(() => {}), intervalMs);
  }

  async sample() {
    const pc = this.getPc();
    if (!pc) return;
    if (pc !== this.pc) {
      this.pc = pc;
      this.prev = { lost: 0, received: 0 };
    }
    const report = await pc.getStats();
    let rtt = null;
    let lost = 0;
    let received = 0;
    let inboundBytes = 0;
    let outboundBytes = 0;
    let remoteLoss = null;
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.currentRoundTripTime !== undefined) {
        rtt = s.currentRoundTripTime;
      } else if (s.type === 'inbound-rtp') {
        lost += s.packetsLost || 0;
        received += s.packetsReceived || 0;
        inboundBytes += s.bytesReceived || 0;
      } else if (s.type === 'outbound-rtp') {
        outboundBytes += s.bytesSent || 0;
      } else if (s.type === 'remote-inbound-rtp' && s.fractionLost !== undefined) {
        remoteLoss = Math.max(remoteLoss ?? 0, s.fractionLost);
      }
    });
    const dLost = Math.max(0, lost - this.prev.lost);
    const dRecv = Math.max(0, received - this.prev.received);
    this.prev = { lost, received };
    const inLoss = dLost + dRecv > 0 ? dLost / (dLost + dRecv) : 0;
    const loss = Math.max(inLoss, remoteLoss ?? 0);
    const state = pc.connectionState;
    const connected = state === 'connected';
    const level = classify({ loss, rtt, connected });
    this.onSample({ level, loss, rtt, inboundBytes, outboundBytes, state });
  }

  stop() {
    clearInterval(this.timer);
  }
}
