// Our own media in the room: microphone, camera, screen share, and what the host imposes.
// Local state changes at once; the server is told with media-control / screen-share and may
// refuse (host lock, no share permission), in which case the change is undone and explained.

import * as devices from '../devices.js';
import { T } from '../signaling.js';

export class LocalMedia extends EventTarget {
  constructor({ stream, prefs, signaling }) {
    super();
    this.stream = stream || new MediaStream();
    this.prefs = prefs;
    this.signaling = signaling;
    this.media = null;
    this.audioOn = prefs.audioOn !== false && this.stream.getAudioTracks().length > 0;
    this.videoOn = prefs.videoOn !== false && this.stream.getVideoTracks().length > 0;
    this.screen = null; // MediaStream while sharing
    this.shareConfirmed = false;
    this.publishing = false;
    this.apply();
  }

  changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }

  apply() {
    this.stream.getAudioTracks().forEach((t) => { t.enabled = this.audioOn; });
    this.stream.getVideoTracks().forEach((t) => { t.enabled = this.videoOn; });
  }

  /** Publish camera and microphone on the media link (not for the audience). */
  async attach(media) {
    this.media = media;
    const audio = this.publishing && this.stream.getAudioTracks()[0];
    const video = this.publishing && this.stream.getVideoTracks()[0];
    if (audio) await media.publish('microphone', audio, this.stream);
    if (video) await media.publish('camera', video, this.stream);
    if (this.publishing && this.screen && this.shareConfirmed) {
      await media.publish('screen', this.screen.getVideoTracks()[0], this.screen);
    }
    if (!audio && !video) media.listenOnly(); // audience, or no devices: receive only
  }

  /** Tell the room our state (after joining or resuming). */
  announce() {
    if (!this.publishing) return;
    this.signaling.send(T.MEDIA_CONTROL, { action: this.audioOn ? 'unmute' : 'mute', media_type: 'audio' });
    this.signaling.send(T.MEDIA_CONTROL, { action: this.videoOn ? 'video_on' : 'video_off', media_type: 'video' });
  }

  /** Whether we may publish at all (audience may not); opens devices when it becomes true. */
  async setPublishing(allowed) {
    if (this.decided && allowed === this.publishing) return;
    this.decided = true;
    this.publishing = allowed;
    if (!allowed) {
      await this.stopShare(false);
      if (this.media) {
        await this.media.publish('microphone', null);
        await this.media.publish('camera', null);
      }
      devices.stopStream(this.stream);
      this.stream = new MediaStream();
      this.audioOn = false;
      this.videoOn = false;
    } else {
      if (this.stream.getTracks().length === 0) {
        const { stream } = await devices.openMedia({ audioId: this.prefs.audioId, videoId: this.prefs.videoId });
        this.stream = stream;
        this.audioOn = false; // promoted speakers start muted and unmute themselves
        this.videoOn = stream.getVideoTracks().length > 0 && this.prefs.videoOn !== false;
        this.apply();
      }
    }
    if (this.media) await this.attach(this.media);
    this.changed();
  }

  setMic(on) {
    if (on && this.stream.getAudioTracks().length === 0) return false;
    this.audioOn = on;
    this.apply();
    this.prefs.audioOn = on;
    devices.savePrefs(this.prefs);
    this.signaling.send(T.MEDIA_CONTROL, { action: on ? 'unmute' : 'mute', media_type: 'audio' });
    this.changed();
    return true;
  }

  setCam(on) {
    if (on && this.stream.getVideoTracks().length === 0) return false;
    this.videoOn = on;
    this.apply();
    this.prefs.videoOn = on;
    devices.savePrefs(this.prefs);
    this.signaling.send(T.MEDIA_CONTROL, { action: on ? 'video_on' : 'video_off', media_type: 'video' });
    this.changed();
    return true;
  }

  /** The host (or the server) turned our `media` off: follow without telling anyone back. */
  forceOff(media) {
    if (media === 'audio') this.audioOn = false;
    else this.videoOn = false;
    this.apply();
    this.changed();
  }

  /** Pick a screen (needs the click's user activation), then ask the room for the floor. */
  async startShare() {
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    this.screen = screen;
    this.shareConfirmed = false;
    const track = screen.getVideoTracks()[0];
    track.contentHint = 'detail';
    track.addEventListener('ended', () => this.stopShare());
    this.shareRequest = this.signaling.send(T.SCREEN_SHARE, { action: 'start', user_id: this.signaling.userId });
    if (!this.shareRequest) {
      devices.stopStream(screen);
      this.screen = null;
      throw new Error('not connected');
    }
    this.changed();
  }

  /** The server accepted our share: now send the pixels. */
  async confirmShare() {
    if (!this.screen || this.shareConfirmed) return;
    this.shareConfirmed = true;
    if (this.media) await this.media.publish('screen', this.screen.getVideoTracks()[0], this.screen);
    this.changed();
  }

  /** Stop sharing; `tell` false when the server already knows (it stopped us). */
  async stopShare(tell = true) {
    if (!this.screen) return;
    const screen = this.screen;
    this.screen = null;
    this.shareConfirmed = false;
    if (this.media) await this.media.publish('screen', null);
    devices.stopStream(screen);
    if (tell) this.signaling.send(T.SCREEN_SHARE, { action: 'stop', user_id: this.signaling.userId });
    this.changed();
  }

  get sharing() {
    return Boolean(this.screen);
  }

  close() {
    devices.stopStream(this.stream);
    devices.stopStream(this.screen);
    this.screen = null;
  }
}
