#include "metrics/ingest_metrics.h"
