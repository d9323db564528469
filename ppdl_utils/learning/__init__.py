"""Models, input-table starts, the training loop, backbone features, private inference."""
