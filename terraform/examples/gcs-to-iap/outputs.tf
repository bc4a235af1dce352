output "function_name" {
  description = "The GCS-triggered function."
  value       = module.gcs_trigger.function_name
}

output "runtime_service_account_email" {
  description = "The identity IAP sees: it holds roles/iap.httpsResourceAccessor on the backend service (and, for iap_jwt, may sign its own JWTs)."
  value       = module.gcs_trigger.runtime_service_account_email
}

output "trigger_service_account_email" {
  description = "The Eventarc trigger's service account (may only invoke the function)."
  value       = module.gcs_trigger.trigger_service_account_email
}
