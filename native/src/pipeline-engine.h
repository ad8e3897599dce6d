// The native engine over several GPUs: one stage (a contiguous range of layers) per device.
#pragma once
#include "engine.h"
#include <vector>

namespace ssn {

/** devices[i] runs the next layerCounts[i] layers (the counts add up to the model's layers). */
std::unique_ptr<Engine> makePipelineEngine(const ssn_dims& dims, int precision, const std::vector<int>& devices,
                                           const std::vector<int>& layerCounts, const std::string& weightsKey = "");

}  // namespace ssn
