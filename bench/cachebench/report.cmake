# cachebench_report: cachebench's reports (text, JSON, CSV, and the HTML page with the vendored
# uPlot embedded by embed.cmake). Included by bench/ (cachebench) and tests/ (bench_test, also
# in the builds without bench/); defined once.
if(NOT TARGET cachebench_report)
  set(_cb ${CMAKE_CURRENT_LIST_DIR})
  set(_uplot ${_cb}/vendor/uplot)
  set(_embed ${CMAKE_BINARY_DIR}/cachebench/uplot_embed.cc)
  add_custom_command(
    OUTPUT ${_embed}
    COMMAND ${CMAKE_COMMAND} -DJS=${_uplot}/uPlot.iife.min.js -DCSS=${_uplot}/uPlot.min.css
            -DOUT=${_embed} -P ${_cb}/embed.cmake
    DEPENDS ${_uplot}/uPlot.iife.min.js ${_uplot}/uPlot.min.css ${_cb}/embed.cmake)
  add_library(cachebench_report STATIC ${_cb}/report.cc ${_cb}/html.cc ${_embed})
  target_include_directories(cachebench_report PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(cachebench_report PUBLIC cachetier_common CLI11::CLI11)
endif()
