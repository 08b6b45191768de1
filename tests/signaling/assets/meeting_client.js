// The spec's example web client (COMMUNICATION_DESIGN.zh.md, 完整示例), verbatim except for
// its placeholders: URLs, credentials, meeting id and password, and the user id it hard-codes
// (each now read from the page's CONFER object). Served by test_spec_client.py.
class MeetingClient {
  constructor(apiUrl, wsUrl) {
    this.apiUrl = apiUrl;
    this.wsUrl = wsUrl;
    this.token = null;
    this.ws = null;
    this.peerConnections = new Map();
    this.localStream = null;
  }

  // 登录
  async login(username, password) {
    const response = await fetch(`${this.apiUrl}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password })
    });

    const result = await response.json();
    if (result.code === 200) {
      this.token = result.data.token;
      return result.data;
    }
    throw new Error(result.message);
  }

  // 加入会议
  async joinMeeting(meetingId, password) {
    const response = await fetch(`${this.apiUrl}/api/v1/meetings/${meetingId}/join`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'Authorization': `Bearer ${this.token}`
      },
      body: JSON.stringify({ password })
    });

    const result = await response.json();
    if (result.code === 200) {
      await this.connectWebSocket(meetingId, result.data);
      await this.setupLocalMedia();
      return result.data;
    }
    throw new Error(result.message);
  }

  // 连接WebSocket
  async connectWebSocket(meetingId, joinData) {
    const userId = CONFER.userId; // 从token解析
    const peerId = this.generatePeerId();

    const wsUrl = `${this.wsUrl}?token=${this.token}&meeting_id=${meetingId}&user_id=${userId}&peer_id=${peerId}`;
    this.ws = new WebSocket(wsUrl);

    this.ws.onopen = () => {
      console.log('WebSocket connected');
      this.startHeartbeat();
    };

    this.ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      this.handleSignalingMessage(message);
    };

    this.ws.onerror = (error) => {
      console.error('WebSocket error:', error);
    };

    this.ws.onclose = () => {
      console.log('WebSocket closed');
      this.reconnect();
    };
  }

  // 设置本地媒体
  async setupLocalMedia() {
    this.localStream = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: true
    });

    const localVideo = document.getElementById('local-video');
    localVideo.srcObject = this.localStream;
  }

  // 处理信令消息
  async handleSignalingMessage(message) {
    switch (message.type) {
      case 1: // offer
        await this.handleOffer(message);
        break;
      case 2: // answer
        await this.handleAnswer(message);
        break;
      case 3: // ice-candidate
        await this.handleIceCandidate(message);
        break;
      case 6: // user-joined
        await this.handleUserJoined(message);
        break;
      case 7: // user-left
        this.handleUserLeft(message);
        break;
      case 8: // chat
        this.handleChat(message);
        break;
      case 14: // room-info
        this.handleRoomInfo(message);
        break;
    }
  }

  // 创建PeerConnection
  createPeerConnection(remoteUserId, iceServers) {
    const pc = new RTCPeerConnection({ iceServers });

    pc.onicecandidate = (event) => {
      if (event.candidate) {
        this.sendSignalingMessage({
          type: 3,
          to_user_id: remoteUserId,
          payload: {
            candidate: event.candidate.candidate,
            sdpMid: event.candidate.sdpMid,
            sdpMLineIndex: event.candidate.sdpMLineIndex
          }
        });
      }
    };

    pc.ontrack = (event) => {
      const remoteVideo = document.getElementById(`remote-video-${remoteUserId}`);
      if (remoteVideo) {
        remoteVideo.srcObject = event.streams[0];
      }
    };

    // 添加本地流
    this.localStream.getTracks().forEach(track => {
      pc.addTrack(track, this.localStream);
    });

    this.peerConnections.set(remoteUserId, pc);
    return pc;
  }

  // 发送信令消息
  sendSignalingMessage(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({
        id: this.generateMessageId(),
        ...message,
        from_user_id: 1, // 当前用户ID
        meeting_id: this.currentMeetingId,
        session_id: this.sessionId,
        timestamp: new Date().toISOString()
      }));
    }
  }

  // 工具方法
  generatePeerId() {
    return 'peer_' + Math.random().toString(36).substr(2, 9);
  }

  generateMessageId() {
    return 'msg_' + Date.now() + '_' + Math.random().toString(36).substr(2, 9);
  }

  startHeartbeat() {
    this.heartbeatInterval = setInterval(() => {
      this.sendSignalingMessage({ type: 11, payload: {} });
    }, 30000);
  }
}

// 使用示例
const client = new MeetingClient(
  CONFER.apiUrl,
  CONFER.wsUrl
);

// 登录并加入会议
async function start() {
  try {
    await client.login(CONFER.username, CONFER.password);
    await client.joinMeeting(CONFER.meetingId, CONFER.meetingPassword);
  } catch (error) {
    console.error('Error:', error);
  }
}

start();
