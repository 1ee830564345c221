"""Post-processing: the rules, and the search that chooses one on OOF."""

import numpy as np

from kagglesalt.competition import postprocess


def test_post_processing_drops_specks_and_near_empty_masks():
    from kagglesalt.competition.postprocess import PostProcess

    masks = np.zeros((2, 20, 20), bool)
    masks[0, 2:12, 2:12] = True  # 100 px body
    masks[0, 15, 15] = True  # 1 px speck
    masks[1, 0:3, 0:3] = True  # 9 px mask in all
    out = PostProcess(min_component=5, min_area=20)(masks)
    assert out[0].sum() == 100 and not out[1].any()


def test_the_post_processing_search_picks_the_rule_that_scores_best():
    truth = np.zeros((6, 40, 40), bool)
    truth[:3, 5:25, 5:25] = True  # three salty images, three empty
    pred = truth.copy()
    pred[:3, 35, 35] = True  # a speck beside each body
    pred[3:, 10:13, 10:13] = True  # 9 px of false salt on the empty images
    found = postprocess.search(truth, pred)
    assert found.table[(0, 0)] == 0.5  # the empty images score 0 as predicted
    assert found.table[(10, 0)] == found.table[(0, 10)] == found.score == 1.0
    assert found.best == postprocess.PostProcess(0, 10)  # ties go to the gentler rule
    assert found.table[(0, 800)] == 0.5  # a rule too strong empties the salt too
