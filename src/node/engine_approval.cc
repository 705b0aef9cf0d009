// Human checkpoints: an intent held for a decision before delivery, or an agent asking one
// while it works. The decision (actor, comment, time) is kept on the intent and in its history.

#include <spdlog/spdlog.h>

#include "base/time_format.h"
#include "node/engine.h"
#include "wire/agent_protocol.h"

namespace handoff::node {
namespace {

bool WaitingForHuman(const IntentRecord& r) {
  return r.status == IntentStatus::kWaiting && r.waiting_reason == "HUMAN" && r.approval;
}

}  // namespace

Result<const IntentRecord*> Engine::RequestApproval(Txn& txn, Batch& batch, const IntentId& id,
                                                    uint32_t attempt, const Approval& question) {
  HANDOFF_RETURN_IF_ERROR(CheckApproval(question));
  HANDOFF_ASSIGN_OR_RETURN(IntentRecord * staged, Stage(txn, id));
  IntentRecord& r = *staged;
  HANDOFF_RETURN_IF_ERROR(CheckLease(r, &attempt));
  HANDOFF_RETURN_IF_ERROR(CheckChange(r, IntentStatus::kWaiting));  // before the question is set
  r.approval = Approval{
      question.question, question.outcomes, r.to_agent, clock_.NowMs(), true, {}, {}, {}, 0};
  r.waiting_reason = "HUMAN";
  MsgWriter details;
  details.BeginMap();
  details.Field("attempt", attempt);
  details.Field("question", question.question);
  details.EndMap();
  HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kWaiting,
                                     "intent.approval_requested", r.to_agent, details.Release()));
  return staged;
}

Result<const IntentRecord*> Engine::Decide(Txn& txn, Batch& batch, const IntentId& id, bool approve,
                                           std::string_view outcome, std::string_view comment,
                                           std::string_view actor) {
  if (comment.size() > kMaxQuestionBytes) {
    return Status::InvalidArgument("the comment is over 4 KiB");
  }
  HANDOFF_ASSIGN_OR_RETURN(IntentRecord * staged, Stage(txn, id));
  IntentRecord& r = *staged;
  if (r.approval && r.approval->decided()) {
    return Status::Conflict(
        "intent " + id.ToString() + " was already decided: " + r.approval->decision + " by " +
        r.approval->decided_by + " at " + FormatRfc3339(r.approval->decided_at_ms));
  }
  if (!WaitingForHuman(r)) {
    return Status::Conflict("intent " + id.ToString() + " is not waiting for approval (it is " +
                            std::string(IntentStatusName(r.status)) + ")");
  }
  Approval& a = *r.approval;
  std::string decision = approve ? "approved" : "rejected";
  if (approve && !a.outcomes.empty()) {
    std::string choices;
    bool offered = false;
    for (const std::string& o : a.outcomes) {
      offered = offered || o == outcome;
      choices += (choices.empty() ? "" : ", ") + o;
    }
    if (!offered) {
      return Status::InvalidArgument("choose one of the offered outcomes: " + choices);
    }
    decision = std::string(outcome);
  } else if (!outcome.empty() && outcome != decision) {
    return Status::InvalidArgument("intent " + id.ToString() + " offers no outcomes to choose");
  }
  // Refused before delivery (canceled) or sent out again, checked before the decision is set;
  // a remote intent mid-work only notes it here (its destination records the event).
  if (!IsRemote(r) || !a.mid_work) {
    HANDOFF_RETURN_IF_ERROR(CheckChange(
        r, !approve && !a.mid_work ? IntentStatus::kCanceled : IntentStatus::kSubmitted));
  }
  a.decision = decision;
  a.comment = std::string(comment);
  a.decided_by = actor.empty() ? "operator" : std::string(actor);
  a.decided_at_ms = clock_.NowMs();

  if (IsRemote(r) && a.mid_work) {
    // Its agent waits on the destination: the decision is made there, and comes back as an
    // update. Recording it here already refuses a second one.
    Put(r);
    HANDOFF_RETURN_IF_ERROR(
        Emit(txn, batch, r.target_node, wire::peer_kind::kControl, [&](MsgWriter& w) {
          w.Field("intent_id", r.id.ToString());
          w.Field("action", approve ? "approve" : "reject");
          w.Field("outcome", outcome);
          w.Field("actor", a.decided_by);
          w.Field("reason", a.comment);
        }));
    return staged;
  }

  MsgWriter details;
  details.BeginMap();
  details.Field("decision", a.decision);
  details.Field("comment", a.comment);
  details.Field("mid_work", a.mid_work);
  details.EndMap();
  const char* event = approve ? "intent.approval_granted" : "intent.approval_denied";
  if (!approve && !a.mid_work) {
    // Refused before delivery: it never goes out.
    HANDOFF_RETURN_IF_ERROR(
        Transition(txn, batch, r, IntentStatus::kCanceled, event, a.decided_by, details.Release()));
    return staged;
  }
  // Approved, or a mid-work question answered either way: out it goes, decision attached.
  HANDOFF_RETURN_IF_ERROR(
      Transition(txn, batch, r, IntentStatus::kSubmitted, event, a.decided_by, details.Release()));
  if (a.mid_work) {
    HANDOFF_RETURN_IF_ERROR(Enqueue(txn, r.to_agent, r.id));
    ready_.insert(r.to_agent);
    return staged;
  }
  std::string payload;
  HANDOFF_RETURN_IF_ERROR(store_.GetBlob(txn, r.id, BlobKind::kPayload, &payload));
  HANDOFF_RETURN_IF_ERROR(Dispatch(txn, batch, r, payload));
  return staged;
}

}  // namespace handoff::node
