// cachebench's HTML report (--report): one self-contained page with uPlot charts. The page is
// declared in report.h (html_report); this header holds what the build embeds for it.
#pragma once

namespace cachetier::bench {

// uPlot 1.6.32 (bench/cachebench/vendor/uplot, MIT), embedded by embed.cmake.
extern const char* const kUplotJs;
extern const char* const kUplotCss;

}  // namespace cachetier::bench
