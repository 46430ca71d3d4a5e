#!/usr/bin/env bash
# Production set-up for a spec's notifications_subscription (docs/event-driven.md): the bucket's Cloud Storage
# notifications to a Pub/Sub topic, a pull subscription for {name}_gcs_notifications_sensor, and the two grants
# it needs, nothing wider:
#   - the project's Cloud Storage service agent: roles/pubsub.publisher on the topic only;
#   - the code server's Google service account (Workload Identity, k8s/rbac.yaml): roles/pubsub.subscriber on
#     the subscription only (pull and acknowledge; it cannot read other subscriptions or publish).
# Each step is skipped when what it makes exists, so the script can be run again.
#
#   bash k8s/gcs-notifications-setup.sh --project PROJECT_ID --bucket BUCKET --topic TOPIC \
#     --subscription SUBSCRIPTION [--object-prefix path_base/] [--ack-deadline 60] \
#     [--code-server-sa gcs-import-code-server@PROJECT_ID.iam.gserviceaccount.com] [--dry-run]
#
# Then set the spec's notifications_subscription: projects/PROJECT_ID/subscriptions/SUBSCRIPTION.
# --dry-run prints the commands instead of running them (tests/unit/test_notifications_setup.py reads them).
# References: https://cloud.google.com/storage/docs/reporting-changes (notifications, service agent grant),
# https://cloud.google.com/sdk/gcloud/reference/storage/buckets/notifications/create,
# https://cloud.google.com/sdk/gcloud/reference/pubsub/subscriptions/create (--ack-deadline: 10 to 600 s),
# https://cloud.google.com/pubsub/docs/access-control (roles/pubsub.subscriber on one subscription).
set -euo pipefail

project="" bucket="" topic="" subscription="" prefix="" dry_run=0
ack_deadline=60
code_server_sa=""
#: The sensor ticks every 30 s (Dagster's default); a message pulled by one tick must not come back during it.
SENSOR_INTERVAL_SECONDS=30

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$2; shift 2 ;;
    --bucket) bucket=$2; shift 2 ;;
    --topic) topic=$2; shift 2 ;;
    --subscription) subscription=$2; shift 2 ;;
    --object-prefix) prefix=$2; shift 2 ;;
    --ack-deadline) ack_deadline=$2; shift 2 ;;
    --code-server-sa) code_server_sa=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage ;;
    *) echo "gcs-notifications-setup: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for required in project bucket topic subscription; do
  if [ -z "${!required}" ]; then
    echo "gcs-notifications-setup: --$required is required (see --help)" >&2; exit 2
  fi
done
case "$ack_deadline" in ''|*[!0-9]*) echo "gcs-notifications-setup: --ack-deadline is $ack_deadline: give whole seconds" >&2; exit 2 ;; esac
if [ "$ack_deadline" -lt $((2 * SENSOR_INTERVAL_SECONDS)) ] || [ "$ack_deadline" -gt 600 ]; then
  echo "gcs-notifications-setup: --ack-deadline is $ack_deadline s: use 60 to 600 (at least twice the sensor's" \
       "${SENSOR_INTERVAL_SECONDS} s interval, so a message is not redelivered while the tick that pulled it runs)" >&2
  exit 2
fi
code_server_sa=${code_server_sa:-gcs-import-code-server@$project.iam.gserviceaccount.com}
topic_path=projects/$project/topics/$topic

run() {
  if [ "$dry_run" = 1 ]; then printf '%s\n' "$*"; else "$@"; fi
}
exists() {  # true when the describe command succeeds (never in a dry run: every step is printed)
  [ "$dry_run" = 0 ] && "$@" >/dev/null 2>&1
}

exists gcloud pubsub topics describe "$topic" --project="$project" \
  || run gcloud pubsub topics create "$topic" --project="$project"

# The bucket's notifications are published by the project's Cloud Storage service agent.
if [ "$dry_run" = 1 ]; then
  service_agent="SERVICE_AGENT"
  printf '%s\n' "gcloud storage service-agent --project=$project"
else
  service_agent=$(gcloud storage service-agent --project="$project")
fi
run gcloud pubsub topics add-iam-policy-binding "$topic" --project="$project" \
  --member="serviceAccount:$service_agent" --role=roles/pubsub.publisher

if [ "$dry_run" = 1 ] || ! gcloud storage buckets notifications list "gs://$bucket" --format='value(topic)' \
    | grep -q "/$topic_path\$"; then
  notification=(gcloud storage buckets notifications create "gs://$bucket" --topic="$topic_path"
                --event-types=OBJECT_FINALIZE,OBJECT_DELETE --payload-format=json --skip-topic-setup)
  [ -n "$prefix" ] && notification+=(--object-prefix="$prefix")
  run "${notification[@]}"
fi

# Ack deadline >= 2x the sensor's interval; 7 days' retention (Pub/Sub's maximum): a stopped sensor resumes
# where it left off; never expires while nobody pulls.
exists gcloud pubsub subscriptions describe "$subscription" --project="$project" \
  || run gcloud pubsub subscriptions create "$subscription" --project="$project" --topic="$topic_path" \
       --ack-deadline="$ack_deadline" --message-retention-duration=7d --expiration-period=never
run gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --project="$project" \
  --member="serviceAccount:$code_server_sa" --role=roles/pubsub.subscriber

echo "notifications_subscription: projects/$project/subscriptions/$subscription" >&2
