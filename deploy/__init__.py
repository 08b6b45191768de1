"""Deployment files (nginx, coturn, systemd) and the one-box runner (`make deploy-local`)."""
