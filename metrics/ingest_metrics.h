#pragma once
// Placeholder until the metrics registry lands.
namespace pm {}
