#pragma once

namespace knext {
inline constexpr const char* kVersion = "0.1.0";
}
