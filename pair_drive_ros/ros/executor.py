"""Process-level settings of the node entry points (one place, so every launcher does the same)."""

import gc


def freeze_startup_heap() -> None:
    """Exempt every object alive after start-up from the garbage collector.

    Call once the nodes are built (models loaded, warm-up done). Imported modules, torch and
    the models are ~270,000 objects that never become garbage; each full (oldest-generation)
    collection walked all of them while holding the GIL and paused every callback by 60-120 ms
    (measured with the PaIR planner), a few times a minute. Objects created later are collected
    as usual.
    """
    gc.collect()
    gc.freeze()


def make_executor(kind: str = 'single', context=None):
    """Return an rclpy executor for a node process: 'single' or 'multi' (MultiThreadedExecutor).

    A node process spins single-threaded: its callbacks run one at a time anyway (the
    planner's inference keeps its inputs waiting in their DDS queues), and the multi-threaded
    executor's Python wait loop runs beside the callbacks and competes with them for the GIL.
    (rclpy's experimental EventsExecutor has no guard conditions, which the planner uses, and
    its spin() did not hand the GIL back in a quick trial here.)
    """
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    if kind == 'single':
        return SingleThreadedExecutor(context=context)
    if kind == 'multi':
        return MultiThreadedExecutor(context=context)
    raise ValueError(f"executor kind must be 'single' or 'multi', got {kind!r}")


def spin_node_process(node_factory, args=None) -> None:
    """Run one node in this process: init, build, freeze the heap, spin single-threaded, clean up.

    The body of a node's console-script `main()` (as in ros2/examples): Ctrl-C and an external
    shutdown end the spin quietly; the node is destroyed and rclpy shut down either way.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=args)
    node = None
    try:
        node = node_factory()
        executor = make_executor('single')
        executor.add_node(node)
        freeze_startup_heap()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
