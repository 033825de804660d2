#pragma once

// The whole public API, in the order a request flows through it:
// source -> admission -> transport -> parse -> sink, wired by the dispatcher.

#include <sluice/error.hpp>
#include <sluice/http_response.hpp>
#include <sluice/logger.hpp>
#include <sluice/request.hpp>
#include <sluice/result.hpp>

#include <sluice/source/id_index.hpp>
#include <sluice/source/jsonl_reader.hpp>
#include <sluice/source/token_estimate.hpp>

#include <sluice/admission/admission_queue.hpp>
#include <sluice/admission/limit_headers.hpp>
#include <sluice/admission/rate_limiter.hpp>
#include <sluice/admission/retry_budget.hpp>
#include <sluice/admission/retry_policy.hpp>
#include <sluice/admission/scope.hpp>
#include <sluice/admission/token_bucket.hpp>

#include <sluice/transport/connection_pool.hpp>
#include <sluice/transport/endpoint.hpp>
#include <sluice/transport/tls_context.hpp>

#include <sluice/parse/completion_parser.hpp>

#include <sluice/sink/journal.hpp>
#include <sluice/sink/jsonl_writer.hpp>
#include <sluice/sink/reorder_buffer.hpp>

#include <sluice/dispatcher.hpp>
#include <sluice/metrics.hpp>
#include <sluice/prometheus.hpp>
