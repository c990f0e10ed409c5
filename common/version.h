// The version every program reports (`--version`, the memcache `version` command, stats).
#pragma once

#define CACHETIER_VERSION "0.1.0"
