from search.report import pareto_front


def test_pareto_front_keeps_cheapest_for_each_accuracy_gain() -> None:
    points = [(3.0, 0.9), (1.0, 0.8), (2.0, 0.7), (2.5, 0.95), (1.0, 0.85)]
    assert pareto_front(points) == [(1.0, 0.85), (2.5, 0.95)]
