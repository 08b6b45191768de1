"""The SFU: forwards participants' RTP without decoding it, in worker processes of its own."""
