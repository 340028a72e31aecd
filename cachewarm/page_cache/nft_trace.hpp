#pragma once
// The prewarm list when no manifest was recorded: Next.js's build traces (.nft.json, written by
// @vercel/nft: {"version":1,"files":[paths relative to the trace file], ...}).
//
// What a standalone build has (Next 16, read from tests/fixtures/next-app):
//   <app>/server.js                                   not traced itself
//   <app>/.next/required-server-files.json            "files": manifests read at startup,
//                                                     "relativeAppDir": <app> below the root
//   <app>/.next/server/app/<route>/page.js.nft.json   one per page; not the page itself, its
//                                                     chunks and node_modules
//   <app>/.next/server/app-paths-manifest.json        "/slow/page" -> "app/slow/page.js"
//   <app>/.next/app-path-routes-manifest.json         "/slow/page" -> "/slow"
//   <app>/.next/server/pages-manifest.json            pages router: "/about" -> "pages/about.js"
// The server's own trace (next-server.js.nft.json, the largest) is NOT copied into the
// standalone output: it stays in the build tree (<project>/.next/, the standalone dir's parent)
// with paths relative to that directory. A slim image has none; copy it to <app>/.next/ to use it.
//
// Traces list everything reachable, in path order: on the fixture their union is several times
// what node reads while booting and rendering (sharp's libvips, edge runtimes, browser builds of
// react-dom; README "Page-cache prewarm"). The recorded manifest is far better; this is the
// fallback.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace knext {

// One trace's "files", each resolved against the trace file's directory and lexically
// normalised (absolute when trace_path is). Errors: unreadable, over 16 MiB, not JSON, no
// "files" array of strings.
Expected<std::vector<std::string>> read_nft_trace(const std::string& trace_path);

struct PageRoute {
  std::string route;  // "/slow", "/blog/[slug]", "/"
  std::string file;   // relative to <app>/.next/server: "app/slow/page.js"
};

// Every route of the app from the manifests above (app router, then pages router); empty
// when none can be read.
std::vector<PageRoute> read_page_routes(const std::string& app_dir);

// The route that serves `warm_path` ("/slow?x=1" -> "/slow"): an exact match first, then a
// dynamic route ([param] one segment, [...param] one or more, [[...param]] any number).
// Route handlers (".../route.js") count: GET /api/health loads one.
std::optional<PageRoute> match_route(const std::vector<PageRoute>& routes,
                                     std::string_view warm_path);

struct TraceFiles {
  std::vector<std::string> files;     // absolute, each once, existing regular files
  std::vector<std::string> traces;    // trace files that were read
  std::vector<std::string> problems;  // one line each: what could not be used
  size_t dropped = 0;                 // entries missing, outside the app's root or not module code
};

struct TraceOptions {
  // Next (preloadEntriesOnStart, on by default since 15) requires every page entry at startup,
  // not only the warm paths': add the other entries and their traces after the warm paths'.
  bool all_entries = true;
  // Keep only what node's module loader reads (.js .cjs .mjs .json): traces also list native
  // libraries, READMEs and C headers, which sharp loads, if at all, on the first image request.
  bool code_only = true;
};

// The files the first render needs according to the traces, in this order: server.js and the
// app's package.json; the server's trace (<app>/.next/next-server.js.nft.json, else the build
// tree's); the manifests of required-server-files.json; for each warm path its page entry,
// then that entry's trace; then the other entries (options.all_entries).
// Paths in the build tree's trace are mapped into the standalone output by their place below
// the tracing root. Never fails: what is missing or garbage is skipped and named in problems.
TraceFiles trace_prewarm_files(const std::string& app_dir,
                               const std::vector<std::string>& warm_paths,
                               const TraceOptions& options = {});

}  // namespace knext
