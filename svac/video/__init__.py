"""Video input (decord, frame folders, in-memory frames) and result export (PNG, mp4, JSON)."""
