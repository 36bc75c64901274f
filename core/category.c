#include "category.h"

#include <string.h>

static const char *const names[CATEGORY_COUNT + 1] = {
    NULL,
    [LLMOPS_CATEGORY_EXPERIMENT_TRACKING] = "experiment_tracking",
    [LLMOPS_CATEGORY_SERVING] = "serving",
    [LLMOPS_CATEGORY_ORCHESTRATION] = "orchestration",
    [LLMOPS_CATEGORY_MODEL_REGISTRY] = "model_registry",
    [LLMOPS_CATEGORY_DATA_VERSIONING] = "data_versioning",
};

const char *category_name(int category)
{
    return category >= 1 && category <= CATEGORY_COUNT ? names[category] : NULL;
}

int category_from_string(const char *s)
{
    for (int i = 1; i <= CATEGORY_COUNT; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

const char *category_list(void)
{
    return "experiment_tracking, serving, orchestration, model_registry, data_versioning";
}
