"""Pure run-time logic of the nodes, testable without rclpy: path tracking, safety, input sync."""
