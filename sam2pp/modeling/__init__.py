"""The SAM 2++ network: image encoder, prompt encoder, unified decoder and task-adaptive memory."""
