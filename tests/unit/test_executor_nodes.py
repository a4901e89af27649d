from syncmaster_ray.job.executor_nodes import ExecutorPlacement, alive_executor_nodes


def actor(class_name: str, node: str, state: str = "ALIVE") -> dict:
    return {"class_name": class_name, "node_id": node, "state": state}


def test_only_live_raydp_executors_count():
    actors = [
        actor("org.apache.spark.executor.RayDPExecutor", "n2"),
        actor("org.apache.spark.executor.RayDPExecutor", "n1"),
        actor("org.apache.spark.executor.RayDPExecutor", "n3", state="DEAD"),
        actor("org.apache.spark.executor.RayDPExecutor", "", state="PENDING_CREATION"),
        actor("TransferActor", "n1"),
    ]
    assert alive_executor_nodes(actors) == ("n1", "n2")


def test_all_on_driver_node():
    assert ExecutorPlacement("n1", ("n1", "n1")).all_on_driver_node
    assert not ExecutorPlacement("n1", ("n1", "n2")).all_on_driver_node
    assert ExecutorPlacement("n1", ("n2",)).as_metrics() == {"driver_node": "n1", "executor_nodes": ["n2"]}
