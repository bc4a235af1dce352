output "function_name" {
  description = "The GCS-triggered function."
  value       = module.gcs_trigger.function_name
}

output "runtime_service_account_email" {
  description = "The identity Composer sees: it holds roles/composer.user, and in Airflow needs a role that may create DAG runs (Op, Composer's default for new users)."
  value       = module.gcs_trigger.runtime_service_account_email
}

output "trigger_service_account_email" {
  description = "The Eventarc trigger's service account (may only invoke the function)."
  value       = module.gcs_trigger.trigger_service_account_email
}

output "pubsub_function_name" {
  description = "The Pub/Sub-triggered function, if pubsub_topic is set."
  value       = one(module.pubsub_trigger[*].function_name)
}

output "pubsub_runtime_service_account_email" {
  description = "The Pub/Sub-triggered function's runtime service account, if any."
  value       = one(module.pubsub_trigger[*].runtime_service_account_email)
}
