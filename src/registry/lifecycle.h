/* ECR lifecycle policies: the JSON rules document checked as ECR checks it,
 * and the evaluation that picks which images expire. Pure computation, so the
 * rules can be tested with made-up clocks; barged's housekeeping feeds it the
 * images of each repository and deletes what it picks.
 *
 * Semantics (ECR's user guide): rules apply in rulePriority order, lowest
 * first; each image is claimed by the first rule whose tag selection matches
 * it, so a lower-priority rule can never expire an image a higher one
 * selected, even one that rule kept. imageCountMoreThan keeps the newest
 * countNumber images of its selection; sinceImagePushed expires images pushed
 * more than countNumber days ago. Several entries in tagPrefixList or
 * tagPatternList must all match (one tag each) for an image to be selected. */
#ifndef BARGE_REGISTRY_LIFECYCLE_H
#define BARGE_REGISTRY_LIFECYCLE_H

#include "common/error.h"

enum barge_lifecycle_tag_status {
    BARGE_LC_TAGGED,
    BARGE_LC_UNTAGGED,
    BARGE_LC_ANY,
};

enum barge_lifecycle_count {
    BARGE_LC_COUNT_MORE_THAN, /* imageCountMoreThan */
    BARGE_LC_SINCE_PUSHED,    /* sinceImagePushed, in days */
};

struct barge_lifecycle_rule {
    long long priority;
    enum barge_lifecycle_tag_status tag_status;
    char **prefixes;
    size_t n_prefixes;
    char **patterns; /* '*' matches any run of characters */
    size_t n_patterns;
    enum barge_lifecycle_count count_type;
    long long count;
};

struct barge_lifecycle_policy {
    struct barge_lifecycle_rule *rules; /* sorted by priority */
    size_t n_rules;
};

/* Parses and checks a lifecycle policy text. Errors are BARGE_ERR_INVALID
 * with ECR's "Lifecycle policy validation failure" wording. Release out with
 * barge_lifecycle_release. */
int barge_lifecycle_parse(const char *text, struct barge_lifecycle_policy *out,
                          struct barge_error **err);
void barge_lifecycle_release(struct barge_lifecycle_policy *p);

struct barge_lifecycle_image {
    double pushed_at; /* epoch seconds */
    const char *const *tags;
    size_t n_tags;
    bool expire; /* set by barge_lifecycle_evaluate */
};

/* Sets expire on each image the policy expires at time now (epoch seconds).
 * The order of images does not matter. */
void barge_lifecycle_evaluate(const struct barge_lifecycle_policy *p,
                              struct barge_lifecycle_image *images, size_t n, double now);

#endif
