"""rclpy nodes: thin shells over perception, policy and sim (parameters, QoS, callbacks)."""
