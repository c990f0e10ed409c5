# cachetier_trace: cache traces (csv, libCacheSim's oracleGeneral) and the offline simulator
# over them (exact LRU, FIFO, CLOCK, SIEVE, S3-FIFO, Belady). cachebench --trace replays the
# traces, trace_sim simulates them, the unit tests (also in builds without bench/) check the
# simulator. Included by bench/ and tests/; defined once.
if(NOT TARGET cachetier_trace)
  set(_tr ${CMAKE_CURRENT_LIST_DIR})
  add_library(cachetier_trace STATIC ${_tr}/trace_file.cc ${_tr}/sim.cc)
  target_include_directories(cachetier_trace PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(cachetier_trace PUBLIC cachetier_common)
endif()
